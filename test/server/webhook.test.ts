import { mkdtemp } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import t from 'tap';
import type { AdmissionReview } from '../../src/admission/types.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../../src/cluster/services.js';
import { buildApp } from '../../src/server/app.js';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';

const logLines: Array<Record<string, unknown>> = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _enc, done) {
      logLines.push(JSON.parse(String(chunk)));
      done();
    },
  }),
);

const api = await new LocalApiServer().start();
api.put(service('mongodb-headless'));
api.put(service('mongodb', 'grade-submission', '10.96.0.12'));
const services = createKubernetesServiceDirectory({
  timeoutMs: 1000,
  cache: true,
  log: logger,
  kubeConfig: api.kubeConfig(),
});
const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-test-')));
const app: FastifyInstance = await buildApp({
  settings: defaultSettings(),
  services,
  claims: createKubernetesPersistentVolumeClaimDirectory({
    timeoutMs: 1000,
    log: logger,
    kubeConfig: api.kubeConfig(),
  }),
  bodyLimitBytes: 256 * 1024,
  logger,
  https: { key: certificate.key, cert: certificate.cert },
});
const origin = await app.listen({ port: 0, host: '127.0.0.1' });
t.teardown(async () => {
  await app.close();
  services.close();
  await api.close();
});

/** POSTs over the real HTTPS listener, trusting only the development certificate. */
async function post(path: string, body: unknown) {
  const answer = await httpsRequest(`${origin}${path}`, { body: JSON.stringify(body), ca: certificate.cert });
  return { statusCode: answer.statusCode, body: answer.json() as AdmissionReview & Record<string, unknown> };
}

function decodePatch(review: AdmissionReview): jsonpatch.Operation[] {
  return JSON.parse(Buffer.from(review.response?.patch ?? '', 'base64').toString('utf8'));
}

t.test(
  'POST /validate over HTTPS denies a MongoDB without --replSet behind a ClusterIP Service',
  async (t) => {
    const review = admissionReview({ object: statefulSet({ replicas: 3, serviceName: 'mongodb' }) });
    const { statusCode, body } = await post('/validate', review);
    t.equal(statusCode, 200);
    t.equal(body.apiVersion, 'admission.k8s.io/v1');
    t.equal(body.kind, 'AdmissionReview');
    t.equal(body.response?.uid, review.request.uid, 'echoes request.uid');
    t.equal(body.response?.allowed, false);
    t.equal(body.response?.status?.code, 403);
    t.match(body.response?.status?.message, '[replica-set]');
    t.match(body.response?.status?.message, 'names a Service with clusterIP 10.96.0.12');
  },
);

t.test('POST /validate admits a replica set whose headless Service exists', async (t) => {
  const review = admissionReview({ object: replicaSet() });
  const { body } = await post('/validate', review);
  t.match(body.response, { uid: review.request.uid, allowed: true });
  // The ClusterIP Service "mongodb" of this namespace selects its pods: client-routing warns, only.
  t.same(
    body.response?.warnings?.map((w) => w.slice(0, w.indexOf(':'))),
    ['Service "grade-submission/mongodb" [client-routing]'],
  );
});

t.test('POST /validate finds a Service created in the same apply, just before the StatefulSet', async (t) => {
  api.services.set('grade-submission/fresh-headless', service('fresh-headless'));
  const { body } = await post(
    '/validate',
    admissionReview({ object: replicaSet({ serviceName: 'fresh-headless' }) }),
  );
  t.equal(body.response?.allowed, true);
});

t.test(
  'POST /mutate over HTTPS returns a base64 JSONPatch that applies and bootstraps the set',
  async (t) => {
    const sts = replicaSet();
    const review = admissionReview({ object: sts });
    const { statusCode, body } = await post('/mutate', review);
    t.equal(statusCode, 200);
    t.equal(body.response?.uid, review.request.uid);
    t.equal(body.response?.allowed, true);
    t.equal(body.response?.patchType, 'JSONPatch');
    const patch = decodePatch(body);
    const mutated = jsonpatch.applyPatch(structuredClone(sts), patch, true, false)
      .newDocument as V1StatefulSet;
    t.ok(mutated.spec?.template.spec?.containers[0]?.lifecycle?.postStart?.exec);
    t.equal(mutated.spec?.volumeClaimTemplates?.[0]?.metadata?.name, 'mongodb-data');

    const again = await post('/mutate', admissionReview({ object: mutated }));
    t.same(
      again.body.response,
      { uid: again.body.response?.uid, allowed: true },
      'no patch for a mutated object',
    );
  },
);

t.test('inject() and the HTTPS listener give the same answer for the same review', async (t) => {
  for (const path of ['/validate', '/mutate']) {
    const review = admissionReview({
      object: statefulSet({ replicas: 2, args: ['--replSet', 'rs0'] }),
      uid: 'same-uid',
    });
    const viaHttps = await post(path, review);
    const viaInject = await app.inject({ method: 'POST', url: path, payload: review });
    t.same(viaInject.json(), viaHttps.body, path);
  }
});

t.test('warnings travel in response.warnings', async (t) => {
  const { body } = await post('/validate', admissionReview({ object: replicaSet({ replicas: 4 }) }));
  t.equal(body.response?.allowed, true);
  t.match(body.response?.warnings?.[0], 'use an odd number');
});

t.test('resources other than StatefulSets are admitted untouched', async (t) => {
  const review = admissionReview({
    object: service('mongodb-headless'),
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
  });
  for (const path of ['/mutate', '/validate']) {
    const { body } = await post(path, review);
    t.equal(body.response?.allowed, true, path);
    t.equal(body.response?.patch, undefined, path);
  }
});

t.test('DELETE of a StatefulSet is admitted', async (t) => {
  const { body } = await post(
    '/validate',
    admissionReview({ operation: 'DELETE', oldObject: statefulSet({ replicas: 3 }) }),
  );
  t.equal(body.response?.allowed, true);
});

t.test('anything that is not a well-formed AdmissionReview is a 400 with a JSON error', async (t) => {
  const good = admissionReview({ object: replicaSet() });
  const bad: Array<[string, string]> = [
    ['not JSON', '{"apiVersion": "admission.k8s.io/v1", "kind": '],
    ['wrong apiVersion', JSON.stringify({ ...good, apiVersion: 'admission.k8s.io/v1beta1' })],
    ['no request', JSON.stringify({ apiVersion: good.apiVersion, kind: good.kind })],
    ['no uid', JSON.stringify({ ...good, request: { ...good.request, uid: undefined } })],
    ['unknown operation', JSON.stringify({ ...good, request: { ...good.request, operation: 'PATCH' } })],
    ['object is a string', JSON.stringify({ ...good, request: { ...good.request, object: 'mongodb' } })],
    [
      'containers is not a list',
      JSON.stringify({
        ...good,
        request: {
          ...good.request,
          object: { metadata: {}, spec: { template: { spec: { containers: 'x' } } } },
        },
      }),
    ],
  ];
  for (const [what, payload] of bad) {
    const answer = await httpsRequest(`${origin}/validate`, { body: payload, ca: certificate.cert });
    t.equal(answer.statusCode, 400, what);
    const error = answer.json() as { statusCode: number; message: string };
    t.equal(error.statusCode, 400, what);
    t.type(error.message, 'string', what);
  }
  const health = await httpsRequest(`${origin}/healthz`, { method: 'GET', ca: certificate.cert });
  t.equal(health.statusCode, 200, 'still healthy');
});

t.test('a body over the limit is refused with 413', async (t) => {
  const huge = admissionReview({
    object: replicaSet({ container: { env: [{ name: 'PAD', value: 'x'.repeat(300 * 1024) }] } }),
  });
  const answer = await httpsRequest(`${origin}/validate`, {
    body: JSON.stringify(huge),
    ca: certificate.cert,
  });
  t.equal(answer.statusCode, 413);
  t.equal((answer.json() as { statusCode: number }).statusCode, 413);
});

t.test('GET /healthz and /readyz answer; readyz turns 503 while draining', async (t) => {
  const healthz = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(healthz.statusCode, 200);
  const drainingApp = await buildApp({
    settings: defaultSettings(),
    services,
    bodyLimitBytes: 1024 * 1024,
    logger,
  });
  t.equal((await drainingApp.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  drainingApp.startDraining();
  t.equal((await drainingApp.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
  await drainingApp.close();
});

t.test('while draining, every answer asks the kept-alive client to reconnect elsewhere', async (t) => {
  const drainingApp = await buildApp({
    settings: defaultSettings(),
    services,
    bodyLimitBytes: 1024 * 1024,
    logger,
    https: { key: certificate.key, cert: certificate.cert },
  });
  t.teardown(() => drainingApp.close());
  const at = await drainingApp.listen({ port: 0, host: '127.0.0.1' });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const review = () =>
    httpsRequest(`${at}/validate`, {
      body: JSON.stringify(admissionReview({ object: replicaSet() })),
      ca: certificate.cert,
      agent,
    });
  const before = await review();
  t.equal(before.statusCode, 200);
  t.not(before.headers.connection, 'close', 'kept alive while ready');
  drainingApp.startDraining();
  drainingApp.startDraining();
  const drained = await review();
  t.equal(drained.statusCode, 200, 'still answered');
  t.equal(drained.headers.connection, 'close');
  const ready = await httpsRequest(`${at}/readyz`, { method: 'GET', ca: certificate.cert, agent });
  t.equal(ready.statusCode, 503);
  t.equal(ready.headers.connection, 'close');
});

t.test('logs one JSON line per review with uid, object, decision and duration, not the object', async (t) => {
  logLines.length = 0;
  const review = admissionReview({
    object: statefulSet({ replicas: 3, serviceName: 'mongodb' }),
    uid: 'log-uid-1',
  });
  await post('/validate', review);
  const lines = logLines.filter((l) => l.uid === 'log-uid-1');
  t.equal(lines.length, 1);
  t.match(lines[0], {
    msg: 'admission review',
    webhook: 'validate',
    kind: 'apps/v1/StatefulSet',
    object: 'grade-submission/mongodb',
    operation: 'CREATE',
    verdict: 'denied',
    rules: ['replica-set', 'headless-service'],
    durationMs: Number,
  });
  t.notMatch(JSON.stringify(lines[0]), 'mongo:4.4', 'object contents stay out of info logs');
});
