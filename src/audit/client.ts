import type { KubeConfig } from '@kubernetes/client-node';
import { kubernetesClientLoader } from '../cluster/client.js';

export type AuditLibrary = typeof import('./library.js');

export interface AuditClient {
  lib: AuditLibrary;
  kubeConfig: KubeConfig;
}

/**
 * @kubernetes/client-node through one import(), as the webhook loads it: the bundle then keeps
 * the parts only the audit uses (custom objects, Leases, discovery) out of the webhook's lazily
 * loaded chunk. The kubeconfig is `loadFromDefault()`'s: in a pod its ServiceAccount, else
 * KUBECONFIG or ~/.kube/config; none at all is an error naming the three.
 */
export async function loadAuditClient(): Promise<AuditClient> {
  const lib = await import('./library.js');
  const kubeConfig = new lib.KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    throw new Error(`cannot read the Kubernetes configuration: ${(error as Error).message}`);
  }
  await kubernetesClientLoader(kubeConfig)();
  return { lib, kubeConfig };
}
