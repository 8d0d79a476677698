import type {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObject,
  ListWatch,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, lookupOptions } from '../cluster/client.js';
import type { AuditClient, AuditLibrary } from './client.js';
import type { ObjectsByNamespace } from './evaluate.js';
import { listAllPages } from './pages.js';

/**
 * The audit's view of the cluster: every StatefulSet and Service, each in a watch-fed cache
 * (@kubernetes/client-node's ListWatch), listed page by page and then followed. Changes are
 * reported to the controller, which rescans what they affect; the caches answer the pipeline's
 * look-ups.
 */

export type WatchedKind = 'StatefulSet' | 'Service';

export interface ObjectChange {
  kind: WatchedKind;
  namespace: string;
  name: string;
}

export interface ClusterCaches {
  statefulSets: ObjectsByNamespace<V1StatefulSet> & { all(): readonly V1StatefulSet[] };
  services: ObjectsByNamespace<V1Service> & { all(): readonly V1Service[] };
  /** True once both caches hold a complete LIST and follow the watch. */
  synced(): boolean;
  start(onChange: (change: ObjectChange) => void, onSynced: () => void): void;
  stop(): Promise<void>;
}

const RESTART_DELAY_MS = 2000;
/** The LIST's budget: a page of 500 StatefulSets is a few MB. */
const LIST_TIMEOUT_MS = 60_000;

/**
 * Drops `metadata.managedFields` from a cached object, as client-go's TransformStripManagedFields
 * does: no rule reads it, and it is about half of a StatefulSet's memory in the cache.
 */
export function withoutManagedFields<T>(object: T): T {
  const metadata = (object as { metadata?: { managedFields?: unknown } } | null)?.metadata;
  if (metadata?.managedFields !== undefined) delete metadata.managedFields;
  return object;
}

/** A Watch whose events reach the cache without managedFields. */
function trimmingWatch(lib: AuditLibrary, kubeConfig: KubeConfig): InstanceType<AuditLibrary['Watch']> {
  class TrimmingWatch extends lib.Watch {
    override watch(
      path: string,
      queryParams: Record<string, string | number | boolean | undefined>,
      callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
      done: (err: unknown) => void,
    ): Promise<AbortController> {
      return super.watch(
        path,
        queryParams,
        (phase, apiObj, watchObj) => callback(phase, withoutManagedFields(apiObj), watchObj),
        done,
      );
    }
  }
  return new TrimmingWatch(kubeConfig);
}

interface Watched<T extends KubernetesObject> {
  informer: ListWatch<T>;
  listed: () => boolean;
  stop(): Promise<void>;
}

function watched<T extends KubernetesObject>(
  lib: AuditLibrary,
  kind: WatchedKind,
  path: string,
  kubeConfig: KubeConfig,
  listPage: (page: { limit: number; continueToken: string | undefined }) => Promise<{
    items?: T[];
    metadata?: { _continue?: string; resourceVersion?: string };
  }>,
  log: Logger,
  onChange: (change: ObjectChange) => void,
  onListed: () => void,
): Watched<T> {
  let stopped = false;
  let listed = false;
  let restartTimer: NodeJS.Timeout | undefined;
  // All pages as one list with the snapshot's resourceVersion, which the watch then starts from.
  const informer = new lib.ListWatch<T>(
    path,
    trimmingWatch(lib, kubeConfig),
    async () => {
      const { items, resourceVersion } = await listAllPages(async (page) => {
        const listed = await listPage(page);
        for (const item of listed.items ?? []) withoutManagedFields(item);
        return listed;
      });
      return { metadata: { resourceVersion }, items };
    },
    false,
  );
  const changed = (object: T) =>
    onChange({ kind, namespace: object.metadata?.namespace ?? '', name: object.metadata?.name ?? '' });
  informer.on('add', changed);
  informer.on('update', changed);
  informer.on('delete', changed);
  informer.on('connect', () => {
    // 'connect' comes before the LIST; the cache is complete once it has a resourceVersion.
    queueMicrotask(function waitForList() {
      if (stopped) return;
      if (informer.latestResourceVersion() !== '') {
        if (!listed) {
          listed = true;
          onListed();
        }
        return;
      }
      setTimeout(waitForList, 50).unref();
    });
  });
  informer.on('error', (error: unknown) => {
    if (stopped) return;
    const reason = describeApiError(
      error,
      LIST_TIMEOUT_MS,
      `list, watch ${path.split('/').at(-1)}`,
      "the audit ServiceAccount's",
    );
    log.warn({ kind, reason }, 'audit watch failed; restarting it (the cache keeps its objects meanwhile)');
    restartTimer = setTimeout(() => informer.start().catch(() => undefined), RESTART_DELAY_MS);
    restartTimer.unref();
  });
  informer.start().catch(() => undefined);
  return {
    informer,
    listed: () => listed,
    async stop() {
      stopped = true;
      clearTimeout(restartTimer);
      await informer.stop().catch(() => undefined);
    },
  };
}

const view = <T extends KubernetesObject>(get: () => ListWatch<T> | undefined) => ({
  get: (namespace: string, name: string) => get()?.get(name, namespace),
  list: (namespace: string) => get()?.list(namespace) ?? [],
  all: () => get()?.list() ?? [],
});

export function createClusterCaches({ lib, kubeConfig }: AuditClient, log: Logger): ClusterCaches {
  const apps: AppsV1Api = kubeConfig.makeApiClient(lib.AppsV1Api);
  const core: CoreV1Api = kubeConfig.makeApiClient(lib.CoreV1Api);
  let statefulSets: Watched<V1StatefulSet> | undefined;
  let services: Watched<V1Service> | undefined;
  const synced = () => Boolean(statefulSets?.listed() && services?.listed());
  return {
    statefulSets: view(() => statefulSets?.informer),
    services: view(() => services?.informer),
    synced,
    start(onChange, onSynced) {
      const listed = () => {
        if (synced()) onSynced();
      };
      statefulSets = watched<V1StatefulSet>(
        lib,
        'StatefulSet',
        '/apis/apps/v1/statefulsets',
        kubeConfig,
        ({ limit, continueToken }) =>
          apps.listStatefulSetForAllNamespaces(
            { limit, _continue: continueToken },
            lookupOptions(lib, LIST_TIMEOUT_MS),
          ),
        log,
        onChange,
        listed,
      );
      services = watched<V1Service>(
        lib,
        'Service',
        '/api/v1/services',
        kubeConfig,
        ({ limit, continueToken }) =>
          core.listServiceForAllNamespaces(
            { limit, _continue: continueToken },
            lookupOptions(lib, LIST_TIMEOUT_MS),
          ),
        log,
        onChange,
        listed,
      );
    },
    async stop() {
      await Promise.all([statefulSets?.stop(), services?.stop()]);
    },
  };
}
