import type { PersistentVolumeClaimDirectory } from '../pipeline/ports.js';
import { type LiveLookupOptions, liveLookups, lookupOptions } from './client.js';

export type KubernetesPersistentVolumeClaimDirectoryOptions = LiveLookupOptions;

/**
 * PersistentVolumeClaim look-ups through @kubernetes/client-node, live every time: only the
 * CREATE of a MongoDB StatefulSet asks (is there data of an earlier StatefulSet of this name?),
 * which is rare, and a cache would need a watch on every claim in the cluster. One LIST of the
 * namespace, bounded by the same budget and failure reporting as the other look-ups.
 */
export function createKubernetesPersistentVolumeClaimDirectory(
  options: KubernetesPersistentVolumeClaimDirectoryOptions,
): PersistentVolumeClaimDirectory {
  const bounded = liveLookups(
    options,
    (lib, kubeConfig) => kubeConfig.makeApiClient(lib.CoreV1Api),
    'PersistentVolumeClaim look-up failed',
  );
  return {
    list: (namespace) =>
      bounded(
        async ({ api, lib }) => {
          const list = await api.listNamespacedPersistentVolumeClaim(
            { namespace },
            lookupOptions(lib, options.timeoutMs),
          );
          return { outcome: 'found' as const, claims: list.items ?? [] };
        },
        'list persistentvolumeclaims',
        `list persistentvolumeclaims in ${namespace}`,
      ),
  };
}
