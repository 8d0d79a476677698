import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { AdmissionReview } from '../../src/admission/types.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../../src/cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../../src/cluster/statefulsets.js';
import { loadConfig } from '../../src/config.js';
import { buildApp } from '../../src/server/app.js';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';

/**
 * What every test cluster holds: a headless Service that a 3-member replica set uses, a ClusterIP
 * Service that MongoDB must not use, and a single unreplicated MongoDB.
 */
export async function startApiServer(): Promise<LocalApiServer> {
  const api = await new LocalApiServer().start();
  api.put(service('mongodb-headless'));
  api.put(service('mongodb', 'grade-submission', '10.96.0.12'));
  api.putStatefulSet(replicaSet({ name: 'mongodb-rs' }));
  api.putStatefulSet(statefulSet({ name: 'mongodb-single', replicas: 1 }));
  return api;
}

/** `kubectl scale statefulset/<name> --replicas=<n>` as the webhook sees it: a Scale, subresource scale. */
function scaleReview(name: string, replicas: number, uid: string): AdmissionReview {
  const scale = (count: number) => ({
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name, namespace: 'grade-submission' },
    spec: { replicas: count },
    status: { replicas: 1, selector: `app.kubernetes.io/name=${name}` },
  });
  return admissionReview({
    operation: 'UPDATE',
    object: scale(replicas),
    oldObject: scale(1),
    subResource: 'scale',
    kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
    resource: { group: 'apps', version: 'v1', resource: 'statefulsets' },
    uid,
  });
}

/** A kubeconfig file for `api`, as a serverless function gets one through KUBECONFIG. */
export async function writeKubeconfig(
  api: LocalApiServer,
): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-kubeconfig-'));
  const path = join(dir, 'kubeconfig');
  await writeFile(path, api.kubeConfig().exportConfig(), { mode: 0o600 });
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The reviews every runtime must answer alike: a denial (with a look-up), a patch, a warning. */
export const reviews: Array<[string, '/validate' | '/mutate', AdmissionReview]> = [
  [
    'a MongoDB without --replSet behind a ClusterIP Service is denied',
    '/validate',
    admissionReview({ object: statefulSet({ replicas: 3, serviceName: 'mongodb' }), uid: 'uid-denied' }),
  ],
  [
    'a replica set is patched with its bootstrap hook and storage',
    '/mutate',
    admissionReview({ object: replicaSet(), uid: 'uid-mutated' }),
  ],
  [
    'an even member count is admitted with a warning',
    '/validate',
    admissionReview({ object: replicaSet({ replicas: 4 }), uid: 'uid-warned' }),
  ],
  [
    'scaling an unreplicated MongoDB to 3 is judged on the StatefulSet it reads',
    '/validate',
    scaleReview('mongodb-single', 3, 'uid-scaled'),
  ],
  [
    'deleting the headless Service of a replica set is judged on the StatefulSets it lists',
    '/validate',
    admissionReview({
      operation: 'DELETE',
      oldObject: service('mongodb-headless'),
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      uid: 'uid-service-deleted',
    }),
  ],
];

/** The in-cluster webhook (buildApp over HTTPS, really listening), configured from `env` like main.ts. */
export async function startHttpsReference(api: LocalApiServer, env: NodeJS.ProcessEnv) {
  const config = loadConfig(env);
  const log = pino({ level: 'silent' });
  const services = createKubernetesServiceDirectory({ ...config.lookup, log, kubeConfig: api.kubeConfig() });
  const statefulSets = createKubernetesStatefulSetDirectory({
    timeoutMs: config.lookup.timeoutMs,
    log,
    kubeConfig: api.kubeConfig(),
  });
  const claims = createKubernetesPersistentVolumeClaimDirectory({
    timeoutMs: config.lookup.timeoutMs,
    log,
    kubeConfig: api.kubeConfig(),
  });
  const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-ref-')));
  const app: FastifyInstance = await buildApp({
    settings: config.policy,
    services,
    statefulSets,
    claims,
    bodyLimitBytes: config.bodyLimitBytes,
    logger: log,
    https: { key: certificate.key, cert: certificate.cert },
  });
  const origin = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    async post(path: string, review: AdmissionReview) {
      const answer = await httpsRequest(`${origin}${path}`, {
        body: JSON.stringify(review),
        ca: certificate.cert,
      });
      return { statusCode: answer.statusCode, body: answer.body };
    },
    async close() {
      await app.close();
      services.close();
    },
  };
}

/**
 * A request a short-lived instance may make: GET one Service or StatefulSet, or LIST the
 * StatefulSets of one namespace. Never a cluster-wide LIST and never a WATCH (those fill a cache).
 */
export const isLiveLookup = (request: string) =>
  /^GET \/api\/v1\/namespaces\/[^/]+\/services(\/[^/?]+)?$/.test(request) ||
  /^GET \/api\/v1\/namespaces\/[^/]+\/persistentvolumeclaims$/.test(request) ||
  /^GET \/apis\/apps\/v1\/namespaces\/[^/]+\/statefulsets(\/[^/?]+)?$/.test(request);
