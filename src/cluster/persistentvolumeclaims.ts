import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { PersistentVolumeClaimDirectory } from '../admission/review.js';
import type { PersistentVolumeClaimListLookup } from '../policy/index.js';
import { abortAfter, type KubernetesLibrary, kubernetesClientLoader, withClient } from './client.js';

export interface KubernetesPersistentVolumeClaimDirectoryOptions {
  /** The whole budget of one look-up (LOOKUP_TIMEOUT_MS), as for Services. */
  timeoutMs: number;
  log: Logger;
  /** Defaults to `loadFromDefault()`: in-cluster in a pod, else KUBECONFIG or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

const PERMISSION = 'list persistentvolumeclaims';

/**
 * PersistentVolumeClaim look-ups through @kubernetes/client-node, live every time: only the
 * CREATE of a MongoDB StatefulSet asks (is there data of an earlier StatefulSet of this name?),
 * which is rare, and a cache would need a watch on every claim in the cluster. One LIST of the
 * namespace, bounded by the same budget and failure reporting as the other look-ups.
 */
export function createKubernetesPersistentVolumeClaimDirectory(
  options: KubernetesPersistentVolumeClaimDirectoryOptions,
): PersistentVolumeClaimDirectory {
  const loadClient = kubernetesClientLoader(options.kubeConfig);
  type Client = { core: CoreV1Api; lib: KubernetesLibrary };
  let client: Promise<Client> | undefined;
  const getClient = () => {
    client ??= loadClient().then(({ lib, kubeConfig }) => ({
      core: kubeConfig.makeApiClient(lib.CoreV1Api),
      lib,
    }));
    return client;
  };

  async function liveList(
    { core, lib }: Client,
    namespace: string,
  ): Promise<PersistentVolumeClaimListLookup> {
    const list = await core.listNamespacedPersistentVolumeClaim(
      { namespace },
      abortAfter(lib, options.timeoutMs),
    );
    return { outcome: 'found', claims: list.items ?? [] };
  }

  return {
    async list(namespace) {
      const outcome = await withClient(
        getClient,
        (c) => liveList(c, namespace),
        options.timeoutMs,
        PERMISSION,
      );
      if (outcome.outcome === 'unavailable') {
        options.log.warn(
          { lookup: `list persistentvolumeclaims in ${namespace}`, reason: outcome.reason },
          'PersistentVolumeClaim look-up failed',
        );
      }
      return outcome;
    },
  };
}
