import type { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { StatefulSetDirectory } from '../admission/review.js';
import type { StatefulSetListLookup, StatefulSetLookup } from '../policy/index.js';
import {
  abortAfter,
  isNotFound,
  type KubernetesLibrary,
  kubernetesClientLoader,
  type Unavailable,
  withClient,
} from './client.js';

export interface KubernetesStatefulSetDirectoryOptions {
  /** The whole budget of one look-up (LOOKUP_TIMEOUT_MS), as for Services. */
  timeoutMs: number;
  log: Logger;
  /** Defaults to `loadFromDefault()`: in-cluster in a pod, else KUBECONFIG or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

/**
 * StatefulSet look-ups through @kubernetes/client-node, live every time: scale requests and
 * Service deletions are rare, and a cache would need list/watch on every StatefulSet in the
 * cluster. Each look-up has the same budget and failure reporting as the Service look-up.
 */
export function createKubernetesStatefulSetDirectory(
  options: KubernetesStatefulSetDirectoryOptions,
): StatefulSetDirectory {
  const loadClient = kubernetesClientLoader(options.kubeConfig);
  type Client = { apps: AppsV1Api; lib: KubernetesLibrary };
  let client: Promise<Client> | undefined;
  const getClient = () => {
    client ??= loadClient().then(({ lib, kubeConfig }) => ({
      apps: kubeConfig.makeApiClient(lib.AppsV1Api),
      lib,
    }));
    return client;
  };

  async function liveGet({ apps, lib }: Client, namespace: string, name: string): Promise<StatefulSetLookup> {
    try {
      const statefulSet = await apps.readNamespacedStatefulSet(
        { name, namespace },
        abortAfter(lib, options.timeoutMs),
      );
      return { outcome: 'found', statefulSet };
    } catch (error) {
      if (isNotFound(error)) return { outcome: 'not-found' };
      throw error;
    }
  }

  async function liveList({ apps, lib }: Client, namespace: string): Promise<StatefulSetListLookup> {
    const list = await apps.listNamespacedStatefulSet({ namespace }, abortAfter(lib, options.timeoutMs));
    return { outcome: 'found', statefulSets: list.items ?? [] };
  }

  /** Runs a look-up within the budget; a failure becomes `unavailable` with a reason, and is logged. */
  async function bounded<T extends { outcome: string }>(
    work: (client: Client) => Promise<T>,
    permission: string,
    what: string,
  ): Promise<T | Unavailable> {
    const outcome = await withClient(getClient, work, options.timeoutMs, permission);
    if (outcome.outcome === 'unavailable') {
      options.log.warn(
        { lookup: what, reason: (outcome as Unavailable).reason },
        'StatefulSet look-up failed',
      );
    }
    return outcome;
  }

  return {
    get: (namespace, name) =>
      bounded(
        (client) => liveGet(client, namespace, name),
        'get statefulsets',
        `get statefulset ${namespace}/${name}`,
      ),
    list: (namespace) =>
      bounded(
        (client) => liveList(client, namespace),
        'list statefulsets',
        `list statefulsets in ${namespace}`,
      ),
  };
}
