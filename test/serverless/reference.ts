import { mkdtemp, rm } from 'node:fs/promises';
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
import { scaleReview, serviceDeletion } from '../support/reviews.js';

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

/** A kubeconfig file for `api`, as a serverless function gets one through KUBECONFIG. */
export async function writeKubeconfig(
  api: LocalApiServer,
): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-kubeconfig-'));
  const path = await api.writeKubeconfig(join(dir, 'kubeconfig'));
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
    scaleReview('mongodb-single', 3),
  ],
  [
    'deleting the headless Service of a replica set is judged on the StatefulSets it lists',
    '/validate',
    serviceDeletion(service('mongodb-headless')),
  ],
];

/**
 * An answer's body with the initiation window's deadline taken out of its patch, and the deadline.
 * Two servers answering the same CREATE a second apart differ only there (INITIATE_UNTIL is "now"
 * plus the window, in epoch seconds), so the rest is compared byte for byte and the deadlines
 * against the time between the two answers.
 */
function apartFromDeadline(body: string): { body: string; deadline: number | undefined } {
  const patch = (JSON.parse(body) as AdmissionReview).response?.patch;
  const script = patch ? Buffer.from(patch, 'base64').toString('utf8') : '';
  const deadline = /INITIATE_UNTIL=(\d+)/.exec(script)?.[1];
  if (!patch || deadline === undefined) return { body, deadline: undefined };
  const without = Buffer.from(script.replace(/INITIATE_UNTIL=\d+/, 'INITIATE_UNTIL=<deadline>')).toString(
    'base64',
  );
  return { body: body.replace(patch, without), deadline: Number(deadline) };
}

/**
 * `found` is the reference's answer `wanted` byte for byte, apart from the initiation window's
 * deadline, which may differ by the `apartSeconds` between the two answers.
 */
export function sameAnswer(
  t: {
    equal(found: unknown, wanted: unknown, message: string): boolean;
    ok(found: unknown, message: string): boolean;
  },
  found: string,
  wanted: string,
  apartSeconds: number,
  what: string,
): void {
  const [a, b] = [apartFromDeadline(found), apartFromDeadline(wanted)];
  t.equal(a.body, b.body, what);
  if (b.deadline !== undefined) {
    t.ok(
      a.deadline !== undefined && Math.abs(a.deadline - b.deadline) <= apartSeconds,
      `${what}: the same initiation window, for answers up to ${apartSeconds} s apart`,
    );
  }
}

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
