import type { AppsV1Api } from '@kubernetes/client-node';
import type { StatefulSetDirectory } from '../pipeline/ports.js';
import type { StatefulSetListLookup, StatefulSetLookup } from '../policy/index.js';
import { type ApiClient, isNotFound, type LiveLookupOptions, liveLookups, lookupOptions } from './client.js';

export type KubernetesStatefulSetDirectoryOptions = LiveLookupOptions;

/**
 * StatefulSet look-ups through @kubernetes/client-node, live every time: scale requests and
 * Service deletions are rare, and a cache would need list/watch on every StatefulSet in the
 * cluster. Each look-up has the same budget and failure reporting as the Service look-up.
 */
export function createKubernetesStatefulSetDirectory(
  options: KubernetesStatefulSetDirectoryOptions,
): StatefulSetDirectory {
  const bounded = liveLookups(
    options,
    (lib, kubeConfig) => kubeConfig.makeApiClient(lib.AppsV1Api),
    'StatefulSet look-up failed',
  );
  type Client = ApiClient<AppsV1Api>;

  async function liveGet(
    { api: apps, lib }: Client,
    namespace: string,
    name: string,
  ): Promise<StatefulSetLookup> {
    try {
      const statefulSet = await apps.readNamespacedStatefulSet(
        { name, namespace },
        lookupOptions(lib, options.timeoutMs),
      );
      return { outcome: 'found', statefulSet };
    } catch (error) {
      if (isNotFound(error)) return { outcome: 'not-found' };
      throw error;
    }
  }

  async function liveList({ api: apps, lib }: Client, namespace: string): Promise<StatefulSetListLookup> {
    const list = await apps.listNamespacedStatefulSet({ namespace }, lookupOptions(lib, options.timeoutMs));
    return { outcome: 'found', statefulSets: list.items ?? [] };
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
