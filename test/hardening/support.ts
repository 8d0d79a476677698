import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { KubeConfig, type V1Scale, type V1Service } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { AdmissionRequest, AdmissionReview } from '../../src/admission/types.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../../src/cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../../src/cluster/statefulsets.js';
import type { PolicySettings } from '../../src/policy/index.js';
import { type AppOptions, buildApp } from '../../src/server/app.js';
import { admissionReview, defaultSettings } from '../support/fixtures.js';

export const silent = pino({ level: 'silent' });

/** An autoscaling/v1 Scale as the API server builds it for `statefulsets/scale`. */
export function scale(name: string, replicas: number, namespace = 'grade-submission'): V1Scale {
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name, namespace, uid: randomUUID(), resourceVersion: '4242' },
    // autoscaling/v1 omits replicas when it is 0 (omitempty).
    spec: replicas === 0 ? {} : { replicas },
    status: { replicas: 1, selector: `app.kubernetes.io/name=${name}` },
  };
}

/** The review `kubectl scale statefulset <name> --replicas=<to>` sends to a validating webhook. */
export function scaleReview(name: string, to: number, from = 1, namespace = 'grade-submission') {
  return admissionReview({
    operation: 'UPDATE',
    namespace,
    resource: { group: 'apps', version: 'v1', resource: 'statefulsets' },
    subResource: 'scale',
    kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
    object: scale(name, to, namespace),
    oldObject: scale(name, from, namespace),
  });
}

const serviceResource = { group: '', version: 'v1', resource: 'services' };
const serviceKind = { group: '', version: 'v1', kind: 'Service' };

/** `kubectl delete service` (or an Argo CD prune): object null, oldObject the Service. */
export function serviceDeletion(old: V1Service) {
  return admissionReview({
    operation: 'DELETE',
    resource: serviceResource,
    kind: serviceKind,
    oldObject: old,
  });
}

/** An UPDATE of a Service from `old` to `updated`. */
export function serviceUpdate(old: V1Service, updated: V1Service) {
  return admissionReview({
    operation: 'UPDATE',
    resource: serviceResource,
    kind: serviceKind,
    object: updated,
    oldObject: old,
  });
}

/** A kubeconfig for a server that is not there: a port that was just free on loopback. */
export async function closedPortKubeConfig(): Promise<KubeConfig> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  probe.close();
  await once(probe, 'close');
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
