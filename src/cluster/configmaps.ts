import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ConfigMapDirectory } from '../admission/review.js';
import type { ConfigMapLookup } from '../policy/index.js';
import {
  abortAfter,
  isNotFound,
  type KubernetesLibrary,
  kubernetesClientLoader,
  type Unavailable,
  withClient,
} from './client.js';

export interface KubernetesConfigMapDirectoryOptions {
  /** The whole budget of one look-up (LOOKUP_TIMEOUT_MS), as for Services. */
  timeoutMs: number;
  log: Logger;
  /** Defaults to `loadFromDefault()`: in-cluster in a pod, else KUBECONFIG or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

const PERMISSION = 'get configmaps';

/**
 * ConfigMap look-ups through @kubernetes/client-node, live every time, with the Services' budget
 * and failure reporting. Only a server started with `--config` on a ConfigMap needs one, which is
 * rare; a watch-fed cache would hold every ConfigMap of the cluster (dashboards, CA bundles) in
 * memory and need list and watch on all of them, where one `get` per such review is enough.
 */
export function createKubernetesConfigMapDirectory(
  options: KubernetesConfigMapDirectoryOptions,
): ConfigMapDirectory {
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

  async function liveGet({ core, lib }: Client, namespace: string, name: string): Promise<ConfigMapLookup> {
    try {
      const configMap = await core.readNamespacedConfigMap(
        { name, namespace },
        abortAfter(lib, options.timeoutMs),
      );
      return { outcome: 'found', configMap };
    } catch (error) {
      if (isNotFound(error)) return { outcome: 'not-found' };
      throw error;
    }
  }

  return {
    async lookup(namespace, name) {
      const outcome = await withClient(
        getClient,
        (c) => liveGet(c, namespace, name),
        options.timeoutMs,
        PERMISSION,
      );
      if (outcome.outcome === 'unavailable') {
        options.log.warn(
          { lookup: `get configmap ${namespace}/${name}`, reason: (outcome as Unavailable).reason },
          'ConfigMap look-up failed',
        );
      }
      return outcome;
    },
  };
}
