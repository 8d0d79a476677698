import { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { AdmissionRequest, AdmissionReview } from '../../src/admission/types.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../../src/cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../../src/cluster/statefulsets.js';
import type { PolicySettings } from '../../src/policy/index.js';
import { type AppOptions, buildApp } from '../../src/server/app.js';
import { defaultSettings } from './fixtures.js';
import { freePort } from './processes.js';

export const silent = pino({ level: 'silent' });

/** A kubeconfig for a server that is not there: a port that was just free on loopback. */
export async function closedPortKubeConfig(): Promise<KubeConfig> {
  const port = await freePort();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'gone', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'sts-guard', token: 'test-token' }],
    contexts: [{ name: 'gone', cluster: 'gone', user: 'sts-guard' }],
    currentContext: 'gone',
  });
  return kc;
}

/** The webhook wired as main.ts wires it: real client-node directories against `kubeConfig`. */
export async function webhookAgainst(
  kubeConfig: KubeConfig,
  o: { settings?: Partial<PolicySettings>; timeoutMs?: number } & Omit<Partial<AppOptions>, 'settings'> = {},
): Promise<{ app: FastifyInstance; close: () => Promise<void> }> {
  const { settings, timeoutMs = 1000, ...rest } = o;
  const services = createKubernetesServiceDirectory({ timeoutMs, cache: false, log: silent, kubeConfig });
  const statefulSets = createKubernetesStatefulSetDirectory({ timeoutMs, log: silent, kubeConfig });
  const claims = createKubernetesPersistentVolumeClaimDirectory({ timeoutMs, log: silent, kubeConfig });
  const app = await buildApp({
    settings: { ...defaultSettings(), ...settings },
    services,
    statefulSets,
    claims,
    bodyLimitBytes: 1024 * 1024,
    logger: silent,
    ...rest,
  });
  return {
    app,
    close: async () => {
      await app.close();
      services.close();
    },
  };
}

/** POST /validate through inject(); the answer's AdmissionReview. */
export async function validate(
  app: FastifyInstance,
  review: AdmissionReview & { request: AdmissionRequest },
) {
  const answer = await app.inject({ method: 'POST', url: '/validate', payload: review });
  if (answer.statusCode !== 200) throw new Error(`HTTP ${answer.statusCode}: ${answer.body}`);
  const body = answer.json() as AdmissionReview;
  if (body.response?.uid !== review.request.uid) throw new Error('response.uid does not echo request.uid');
  return body.response;
}
