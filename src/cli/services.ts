import type { V1ConfigMap, V1Service } from '@kubernetes/client-node';
import type { ConfigMapDirectory, ServiceDirectory } from '../pipeline/ports.js';
import type { ConfigMapLookup, ServiceLookup } from '../policy/index.js';
import type { Manifest } from './input.js';

export const isServiceManifest = (object: Manifest): object is Manifest & V1Service =>
  object.kind === 'Service' && object.apiVersion === 'v1';

/** The namespace an object lands in: its own, else the one kubectl would use (`--namespace`). */
export function namespaceOf(object: Manifest, defaultNamespace: string): string {
  const namespace = (object.metadata as { namespace?: unknown } | undefined)?.namespace;
  return typeof namespace === 'string' && namespace !== '' ? namespace : defaultNamespace;
}

/**
 * The Services of the input as a directory: what the webhook would find if the whole input were
 * applied, Services first (as Argo CD's sync order and the bundle's sync waves do).
 */
export function inputServiceDirectory(
  objects: readonly Manifest[],
  defaultNamespace: string,
): ServiceDirectory {
  const services = new Map<string, V1Service>();
  for (const object of objects) {
    const name = (object.metadata as { name?: unknown } | undefined)?.name;
    if (isServiceManifest(object) && typeof name === 'string') {
      services.set(`${namespaceOf(object, defaultNamespace)}/${name}`, object);
    }
  }
  return {
    async lookup(namespace, name): Promise<ServiceLookup> {
      const service = services.get(`${namespace}/${name}`);
      return service ? { outcome: 'found', service } : { outcome: 'not-found' };
    },
    async list(namespace) {
      const inNamespace = [...services.entries()].filter(([key]) => key.startsWith(`${namespace}/`));
      return { outcome: 'found', services: inNamespace.map(([, service]) => service) };
    },
  };
}

/**
 * The live cluster first; a Service it lacks counts when the input creates it, since it is created
 * in the same apply. A Service the cluster has wins: clusterIP is immutable, so the input cannot
 * turn an existing ClusterIP Service headless. An unreachable cluster stays unavailable.
 */
export function clusterThenInput(cluster: ServiceDirectory, input: ServiceDirectory): ServiceDirectory {
  return {
    async lookup(namespace, name) {
      const live = await cluster.lookup(namespace, name);
      return live.outcome === 'not-found' ? input.lookup(namespace, name) : live;
    },
    async list(namespace) {
      const [live, given] = await Promise.all([cluster.list?.(namespace), input.list?.(namespace)]);
      if (live?.outcome !== 'found') return given ?? { outcome: 'found', services: [] };
      const names = new Set(live.services.map((s) => s.metadata?.name));
      const added =
        given?.outcome === 'found' ? given.services.filter((s) => !names.has(s.metadata?.name)) : [];
      return { outcome: 'found', services: [...live.services, ...added] };
    },
  };
}

export const isConfigMapManifest = (object: Manifest): object is Manifest & V1ConfigMap =>
  object.kind === 'ConfigMap' && object.apiVersion === 'v1';

/** The ConfigMaps of the input as a directory, for servers started with a config file in one. */
export function inputConfigMapDirectory(
  objects: readonly Manifest[],
  defaultNamespace: string,
): ConfigMapDirectory {
  const configMaps = new Map<string, V1ConfigMap>();
  for (const object of objects) {
    const name = (object.metadata as { name?: unknown } | undefined)?.name;
    if (isConfigMapManifest(object) && typeof name === 'string') {
      configMaps.set(`${namespaceOf(object, defaultNamespace)}/${name}`, object);
    }
  }
  return {
    async lookup(namespace, name): Promise<ConfigMapLookup> {
      const configMap = configMaps.get(`${namespace}/${name}`);
      return configMap ? { outcome: 'found', configMap } : { outcome: 'not-found' };
    },
  };
}

/**
 * ConfigMaps: the input first, since applying it replaces the cluster's copy; then the cluster,
 * for a ConfigMap the input does not carry. An unreachable cluster stays unavailable.
 */
export function inputThenCluster(input: ConfigMapDirectory, cluster: ConfigMapDirectory): ConfigMapDirectory {
  return {
    async lookup(namespace, name) {
      const given = await input.lookup(namespace, name);
      return given.outcome === 'found' ? given : cluster.lookup(namespace, name);
    },
  };
}
