import type { ConfigMapDirectory } from '../pipeline/ports.js';
import { isNotFound, type LiveLookupOptions, liveLookups, lookupOptions } from './client.js';

export type KubernetesConfigMapDirectoryOptions = LiveLookupOptions;

/**
 * ConfigMap look-ups through @kubernetes/client-node, live every time, with the Services' budget
 * and failure reporting. Only a server started with `--config` on a ConfigMap needs one, which is
 * rare; a watch-fed cache would hold every ConfigMap of the cluster (dashboards, CA bundles) in
 * memory and need list and watch on all of them, where one `get` per such review is enough.
 */
export function createKubernetesConfigMapDirectory(
  options: KubernetesConfigMapDirectoryOptions,
): ConfigMapDirectory {
  const bounded = liveLookups(
    options,
    (lib, kubeConfig) => kubeConfig.makeApiClient(lib.CoreV1Api),
    'ConfigMap look-up failed',
  );
  return {
    lookup: (namespace, name) =>
      bounded(
        async ({ api, lib }) => {
          try {
            const configMap = await api.readNamespacedConfigMap(
              { name, namespace },
              lookupOptions(lib, options.timeoutMs),
            );
            return { outcome: 'found' as const, configMap };
          } catch (error) {
            if (isNotFound(error)) return { outcome: 'not-found' as const };
            throw error;
          }
        },
        'get configmaps',
        `get configmap ${namespace}/${name}`,
      ),
  };
}
