import { pino } from 'pino';
import t from 'tap';
import { answerReview } from '../../src/admission/bindings.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { mongodb } from '../../src/engines/mongodb/index.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, defaultSettings, replicaSet } from '../support/fixtures.js';

const log = pino({ level: 'silent' });

async function started() {
  const api = await new LocalApiServer().start();
  const claims = createKubernetesPersistentVolumeClaimDirectory({
    timeoutMs: 300,
    log,
    kubeConfig: api.kubeConfig(),
  });
  return { api, claims };
}

/** The window the mutating webhook stamped into the hook of a MongoDB CREATE. */
async function windowOf(claims: ReturnType<typeof createKubernetesPersistentVolumeClaimDirectory>) {
  const result = await answerReview('/mutate', admissionReview({ object: replicaSet() }).request, {
    settings: defaultSettings(),
    services: {
      lookup: () => Promise.reject(new Error('the mutating webhook looks up no Service')),
    },
    claims,
    clock: () => 1_767_225_600_000,
  });
  const patch = JSON.parse(Buffer.from(result.response.patch ?? 'W10=', 'base64').toString()) as Array<{
    path: string;
    value: { postStart: { exec: { command: string[] } } };
  }>;
  const hook = patch.find((op) => op.path.endsWith('/lifecycle'))?.value.postStart;
  return { result, window: hook ? mongodb.bootstrapHookInfo(hook)?.window : undefined };
}

t.test('lists the claims of one namespace with a single LIST', async (t) => {
  const { api, claims } = await started();
  t.teardown(() => api.close());
  api.putClaim('grade-submission', 'mongodb-data-mongodb-0');
  api.putClaim('other', 'mongodb-data-mongodb-1');
  const found = await claims.list('grade-submission');
  t.equal(found.outcome, 'found');
  t.same(found.outcome === 'found' ? found.claims.map((c) => c.metadata?.name) : [], [
    'mongodb-data-mongodb-0',
  ]);
  t.same(api.requests, ['GET /api/v1/namespaces/grade-submission/persistentvolumeclaims']);
});

t.test(
  'a MongoDB CREATE with no claims left gets an initiation window; one over retained claims does not',
  async (t) => {
    const { api, claims } = await started();
    t.teardown(() => api.close());
    const fresh = await windowOf(claims);
    t.equal(fresh.result.verdict, 'patched');
    t.same(fresh.result.lookups, ['found']);
    t.same(fresh.window, { until: 1_767_225_600 + 1800, resetToken: '' });

    api.putClaim('grade-submission', 'mongodb-data-mongodb-2');
    const retained = await windowOf(claims);
    t.same(retained.window, { until: 0, resetToken: '' });
    t.match(retained.result.response.warnings?.join('\n'), 'mongodb-data-mongodb-2');
  },
);

t.test('a failed look-up is reported, never taken for "no claims"', async (t) => {
  const { api, claims } = await started();
  t.teardown(() => api.close());
  api.misbehaviour = { kind: 'status', code: 403 };
  const forbidden = await windowOf(claims);
  t.equal(forbidden.result.response.allowed, false, 'LOOKUP_FAILURE_MODE=deny denies the CREATE');
  t.match(forbidden.result.response.status?.message, 'list persistentvolumeclaims');
  t.same(forbidden.result.lookups, ['unavailable']);
  api.misbehaviour = { kind: 'hang' };
  const started_ = Date.now();
  const hung = await claims.list('grade-submission');
  t.equal(hung.outcome, 'unavailable');
  t.ok(Date.now() - started_ < 2000, 'within the look-up budget');
});
