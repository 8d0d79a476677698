import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import t from 'tap';
import type { AdmissionReview } from '../../src/admission/types.js';
import { createKubernetesConfigMapDirectory } from '../../src/cluster/configmaps.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../../src/cluster/services.js';
import { watchExceptionList } from '../../src/exceptions/source.js';
import { buildApp } from '../../src/server/app.js';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, defaultSettings } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { fixture } from '../support/manifests.js';

// The forms MongoDB really runs in, through the HTTPS webhook: Services, ConfigMaps and
// PersistentVolumeClaims are read from a stand-in API server (test/support/apiserver.ts) by the real Kubernetes client.
const log = pino({ level: 'silent' });
const api = await new LocalApiServer().start();
const fixtures = [
  'bitnami-mongodb-replicaset.yaml',
  'mongodb-community-operator.yaml',
  'percona-server-mongodb.yaml',
  'mongod-config-file.yaml',
  'shell-wrapped-mongod.yaml',
].map(fixture);
for (const f of fixtures) {
  for (const s of f.services) api.put(s);
  for (const c of f.configMaps) api.putConfigMap(c);
}
const dir = await mkdtemp(join(tmpdir(), 'sts-guard-exceptions-'));
const exceptionsFile = join(dir, 'exceptions.yaml');
/** Replaces the file in one step, as the kubelet swaps a mounted ConfigMap's files. */
let version = 0;
async function writeExceptions(text: string) {
  const next = join(dir, `.exceptions-${++version}`);
  await writeFile(next, text);
  await rename(next, exceptionsFile);
}
await writeExceptions('');
const exceptions = watchExceptionList(exceptionsFile, log, 20);
await exceptions.ready;

const services = createKubernetesServiceDirectory({
  timeoutMs: 1000,
  cache: false,
  log,
  kubeConfig: api.kubeConfig(),
});
const configMaps = createKubernetesConfigMapDirectory({ timeoutMs: 1000, log, kubeConfig: api.kubeConfig() });
const claims = createKubernetesPersistentVolumeClaimDirectory({
  timeoutMs: 1000,
  log,
  kubeConfig: api.kubeConfig(),
});
const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-test-')));
const app: FastifyInstance = await buildApp({
  settings: defaultSettings(),
  services,
  configMaps,
  claims,
  exceptions,
  exceptionStatus: exceptions,
  bodyLimitBytes: 1024 * 1024,
  logger: log,
  https: { key: certificate.key, cert: certificate.cert },
});
const origin = await app.listen({ port: 0, host: '127.0.0.1' });
t.teardown(async () => {
  await app.close();
  services.close();
  exceptions.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

const CLAIM_LIST = 'GET /api/v1/namespaces/grade-submission/persistentvolumeclaims';
/** The stand-in API server's requests made while `action` ran. */
async function requestsDuring(action: () => Promise<unknown>): Promise<string[]> {
  const before = api.requests.length;
  await action();
  return api.requests.slice(before);
}

async function post(path: '/validate' | '/mutate', object: V1StatefulSet) {
  const answer = await httpsRequest(`${origin}${path}`, {
    body: JSON.stringify(admissionReview({ object })),
    ca: certificate.cert,
  });
  const review = answer.json() as AdmissionReview;
  const response = review.response;
  if (!response) throw new Error(`no response: ${JSON.stringify(review)}`);
  const patch = response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) : [];
  return { response, patch: patch as Array<{ path: string; value?: unknown }> };
}

t.test('the Bitnami chart is admitted and left unpatched: its image bootstraps the set itself', async (t) => {
  const { statefulSet } = fixture('bitnami-mongodb-replicaset.yaml');
  t.equal((await post('/validate', statefulSet)).response.allowed, true);
  let mutate = await post('/mutate', statefulSet);
  const requests = await requestsDuring(async () => {
    mutate = await post('/mutate', statefulSet);
  });
  t.equal(mutate.response.allowed, true);
  t.same(mutate.patch, []);
  t.same(mutate.response.warnings, undefined, 'no initiation-window or Parallel advice either');
  t.notOk(
    requests.some((r) => r.includes('persistentvolumeclaims')),
    'no claim look-up: no window to stamp',
  );
});

for (const name of ['mongodb-community-operator.yaml', 'percona-server-mongodb.yaml']) {
  t.test(
    `${name}: admitted and unpatched, and the audit annotation says why sts-guard stepped aside`,
    async (t) => {
      const { statefulSet } = fixture(name);
      const validate = await post('/validate', statefulSet);
      t.equal(validate.response.allowed, true);
      t.match(validate.response.auditAnnotations?.['stepped-aside'], 'managed by the MongoDB operator');
      let mutate = await post('/mutate', statefulSet);
      const requests = await requestsDuring(async () => {
        mutate = await post('/mutate', statefulSet);
      });
      t.equal(mutate.response.patch, undefined);
      t.match(mutate.response.auditAnnotations?.['stepped-aside'], 'managed by the MongoDB operator');
      t.same(requests, [], 'no look-up at all: the operator bootstraps its set');
    },
  );
}

t.test(
  'a config file with replSetName: the ConfigMap is read live, admitted, hook and storage follow the file',
  async (t) => {
    const { statefulSet } = fixture('mongod-config-file.yaml');
    const before = api.requests.length;
    t.equal((await post('/validate', statefulSet)).response.allowed, true);
    t.ok(
      api.requests
        .slice(before)
        .includes('GET /api/v1/namespaces/grade-submission/configmaps/mongodb-config'),
      'a live GET of the ConfigMap',
    );
    let mutate = await post('/mutate', statefulSet);
    const requests = await requestsDuring(async () => {
      mutate = await post('/mutate', statefulSet);
    });
    t.same(
      requests,
      ['GET /api/v1/namespaces/grade-submission/configmaps/mongodb-config', CLAIM_LIST],
      'the ConfigMap first (it makes this a replica set), then the claims for the initiation window',
    );
    t.match(JSON.stringify(mutate.patch[0]?.value), /27018/, 'the hook uses net.port');
    t.match(JSON.stringify(mutate.patch[0]?.value), /INITIATE_UNTIL=[1-9]/, 'a new set: the window is open');
    t.match(mutate.patch, [{}, {}, { value: { mountPath: '/data/mongo' } }], 'storage at storage.dbPath');
  },
);

t.test('a config file without replication is denied with the replication: block to add', async (t) => {
  const f = fixture('mongod-config-file-without-replication.yaml');
  const configMap = f.configMaps[0];
  if (!configMap) throw new Error('fixture changed');
  api.putConfigMap({ ...configMap, metadata: { ...configMap.metadata, name: 'mongodb-config-standalone' } });
  const sts = structuredClone(f.statefulSet);
  const volume = sts.spec?.template.spec?.volumes?.[0];
  if (volume?.configMap) volume.configMap.name = 'mongodb-config-standalone';
  const { response } = await post('/validate', sts);
  t.equal(response.allowed, false);
  t.match(response.status?.message, 'from a config file without replication.replSetName');
  t.match(response.status?.message, 'replication:\n       replSetName: rs0');
});

t.test('a ConfigMap the API refuses to give fails closed, with the reason', async (t) => {
  api.misbehaveOn(/\/configmaps\//, { kind: 'status', code: 403 });
  t.teardown(() => api.behave());
  const { response } = await post('/validate', fixture('mongod-config-file.yaml').statefulSet);
  t.equal(response.allowed, false);
  t.match(
    response.status?.message,
    'could not read ConfigMap "mongodb-config": the Kubernetes API answered HTTP 403 (check the webhook ServiceAccount RBAC: get configmaps)',
  );
});

t.test(
  'a shell wrapper that execs mongod --replSet is admitted; without it, denied with the script line',
  async (t) => {
    t.equal(
      (await post('/validate', fixture('shell-wrapped-mongod.yaml').statefulSet)).response.allowed,
      true,
    );
    const { response } = await post(
      '/validate',
      fixture('shell-wrapped-mongod-without-replset.yaml').statefulSet,
    );
    t.equal(response.allowed, false);
    t.match(
      response.status?.message,
      'edit its line to:\n       ulimit -n 64000; exec mongod --replSet rs0 --bind_ip_all',
    );
  },
);

async function metric(name: string): Promise<string> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

t.test(
  'a platform exception waives a rule, is audited and counted; a broken list keeps the last good one',
  async (t) => {
    const standalone = fixture('shell-wrapped-mongod-without-replset.yaml').statefulSet;
    await writeExceptions(
      [
        'apiVersion: sts-guard.io/v1',
        'kind: ExceptionList',
        'exceptions:',
        '  - name: legacy-grade-db',
        '    reason: "INFRA-42: moves to the operator in Q3"',
        '    rules: [replica-set]',
        '    match:',
        '      namespaces: [grade-submission]',
        '      names: [mongodb]',
      ].join('\n'),
    );
    await exceptions.reload();
    const waived = await post('/validate', standalone);
    t.equal(waived.response.allowed, true);
    t.match(
      waived.response.warnings?.join('\n'),
      '[replica-set] waived by exception "legacy-grade-db" (INFRA-42: moves to the operator in Q3)',
    );
    t.same(waived.response.auditAnnotations, { exception: 'legacy-grade-db:replica-set' });
    t.match(
      await metric('sts_guard_exceptions_applied_total'),
      'sts_guard_exceptions_applied_total{exception="legacy-grade-db",rule="replica-set"} 1',
    );
    t.match(await metric('sts_guard_exceptions_loaded'), 'sts_guard_exceptions_loaded 1');

    await writeExceptions(
      'apiVersion: sts-guard.io/v1\nkind: ExceptionList\nexceptions:\n  - name: x\n    rules: [replicaset]\n',
    );
    await exceptions.reload();
    t.equal(
      (await post('/validate', standalone)).response.allowed,
      true,
      'the last good list stays in force',
    );
    t.match(
      await metric('sts_guard_exceptions_load_failures_total'),
      'sts_guard_exceptions_load_failures_total 1',
    );
    t.match(await metric('sts_guard_exceptions_load_healthy'), 'sts_guard_exceptions_load_healthy 0');

    // The watch picks up a change without a restart (the kubelet rewrites the mounted ConfigMap).
    await writeExceptions('apiVersion: sts-guard.io/v1\nkind: ExceptionList\nexceptions: []\n');
    for (let i = 0; i < 100 && exceptions.status().healthy === false; i++)
      await new Promise((r) => setTimeout(r, 50));
    t.equal(exceptions.status().healthy, true, 'reloaded by the watch');
    t.equal((await post('/validate', standalone)).response.allowed, false, 'no exception: denied again');
  },
);
