import type { V1StatefulSet } from '@kubernetes/client-node';
import { type ConfigMaps, type DatabaseEngine, engines, type ServerSettings } from '../engines/index.js';
import type { DatabaseTarget } from './types.js';

/**
 * The database a StatefulSet runs, judged by the images of its regular containers only:
 * init containers and sidecars such as exporters never make a StatefulSet a database.
 */
export function detectDatabase(
  statefulSet: V1StatefulSet | undefined,
  known: readonly DatabaseEngine[] = engines,
): DatabaseTarget | undefined {
  const containers = statefulSet?.spec?.template?.spec?.containers ?? [];
  for (const engine of known) {
    const containerIndex = containers.findIndex(
      (c) => typeof c?.image === 'string' && engine.matchesImage(c.image),
    );
    const container = containers[containerIndex];
    if (container) return { engine, container, containerIndex };
  }
  return undefined;
}

/** `spec.replicas` as the API server defaults it: unset means 1. */
export function desiredReplicas(statefulSet: V1StatefulSet | undefined): number {
  const replicas = statefulSet?.spec?.replicas;
  return typeof replicas === 'number' ? replicas : 1;
}

export function describe(statefulSet: V1StatefulSet | undefined, namespace: string): string {
  return `StatefulSet "${namespace}/${statefulSet?.metadata?.name ?? '(unnamed)'}"`;
}

const NO_CONFIG_MAPS: ConfigMaps = new Map();

/** How the target's server is configured, from its pod template and the ConfigMaps the edge read. */
export function inspectServer(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget,
  namespace: string,
  clusterDomain: string,
  configMaps: ConfigMaps | undefined,
): ServerSettings {
  const name = statefulSet.metadata?.name ?? 'database';
  return target.engine.inspect({
    pod: statefulSet.spec?.template?.spec ?? { containers: [target.container] },
    container: target.container,
    statefulSetName: name,
    namespace,
    serviceName: statefulSet.spec?.serviceName || `${name}-headless`,
    clusterDomain,
    configMaps: configMaps ?? NO_CONFIG_MAPS,
  });
}
