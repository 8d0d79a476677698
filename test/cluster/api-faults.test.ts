import type { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import type { AdmissionRequest, AdmissionReview } from '../../src/admission/types.js';
import { LocalApiServer, type Misbehaviour } from '../support/apiserver.js';
import { admissionReview, replicaSet, service } from '../support/fixtures.js';
import { scaleReview, serviceDeletion } from '../support/reviews.js';
import { closedPortKubeConfig, validate, webhookAgainst } from '../support/webhook.js';

/** Small, so a slow API server is slow "beyond the budget" without making the suite slow. */
const BUDGET_MS = 300;
/** Sanity bound only (scheduling on a loaded CI machine), not a performance assertion. */
const SLACK_MS = 1000;

const api = await new LocalApiServer().start();
api.put(service('mongodb-headless'));
api.putStatefulSet(replicaSet({ replicas: 1 }));
const gone = await closedPortKubeConfig();

const webhooks = new Map<string, FastifyInstance>();
const closers: Array<() => Promise<void>> = [];
for (const [target, kubeConfig] of [
  ['api', api.kubeConfig()],
  ['gone', gone],
] as Array<[string, KubeConfig]>) {
  for (const mode of ['deny', 'warn'] as const) {
    const webhook = await webhookAgainst(kubeConfig, {
      timeoutMs: BUDGET_MS,
      settings: { lookupFailureMode: mode },
    });
    webhooks.set(`${target}/${mode}`, webhook.app);
    closers.push(webhook.close);
  }
}
t.teardown(async () => {
  for (const close of closers) await close();
  await api.close();
});

/** The three reviews that need the Kubernetes API, each through a different look-up. */
const reviews: Array<[string, () => AdmissionReview & { request: AdmissionRequest }]> = [
  ['a replica-set StatefulSet CREATE (get service)', () => admissionReview({ object: replicaSet() })],
  ['kubectl scale --replicas=3 (get statefulset)', () => scaleReview('mongodb', 3)],
  ['a headless Service DELETE (list statefulsets)', () => serviceDeletion(service('mongodb-headless'))],
];

const faults: Array<{ name: string; target: 'api' | 'gone'; misbehaviour: Misbehaviour; reason: RegExp }> = [
  {
    name: 'slow beyond the budget',
    target: 'api',
    misbehaviour: { kind: 'delay', ms: BUDGET_MS * 10 },
    reason: /did not answer within 300 ms/,
  },
  { name: 'hung', target: 'api', misbehaviour: { kind: 'hang' }, reason: /did not answer within 300 ms/ },
  {
    name: 'down (connection refused)',
    target: 'gone',
    misbehaviour: { kind: 'none' },
    reason: /could not be reached/,
  },
  {
    name: 'answering 403',
    target: 'api',
    misbehaviour: { kind: 'status', code: 403 },
    reason: /HTTP 403 \(check the webhook ServiceAccount RBAC/,
  },
  { name: 'answering 500', target: 'api', misbehaviour: { kind: 'status', code: 500 }, reason: /HTTP 500/ },
];

for (const fault of faults) {
  t.test(
    `Kubernetes API ${fault.name}: every review is answered in time, per LOOKUP_FAILURE_MODE`,
    async (t) => {
      api.behave();
      api.misbehaviour = fault.misbehaviour;
      t.teardown(() => api.behave());
      for (const mode of ['deny', 'warn'] as const) {
        const app = webhooks.get(`${fault.target}/${mode}`)!;
        await Promise.all(
          reviews.map(async ([what, review]) => {
            const started = performance.now();
            const response = await validate(app, review());
            const elapsed = performance.now() - started;
            t.ok(elapsed < BUDGET_MS + SLACK_MS, `${mode}: ${what}: answered in ${Math.round(elapsed)} ms`);
            if (mode === 'deny') {
              t.equal(response?.allowed, false, `deny: ${what}: denied`);
              t.match(response?.status?.message, fault.reason, `deny: ${what}: the message says why`);
            } else {
              t.equal(response?.allowed, true, `warn: ${what}: allowed`);
              t.match(response?.warnings?.join('\n'), fault.reason, `warn: ${what}: the warning says why`);
            }
          }),
        );
      }
    },
  );
}

t.test('a scale whose StatefulSet is read but whose Service look-up fails names the Service', async (t) => {
  api.behave();
  api.misbehaveOn(/\/services\//, { kind: 'status', code: 500 });
  t.teardown(() => api.behave());
  const response = await validate(webhooks.get('api/deny')!, scaleReview('mongodb', 3));
  t.equal(response?.allowed, false);
  t.match(
    response?.status?.message,
    'could not verify that Service "grade-submission/mongodb-headless" is headless',
  );
  t.match(response?.status?.message, 'HTTP 500');
});

t.test('once the API server recovers, the same reviews are decided on their merits again', async (t) => {
  api.behave();
  const app = webhooks.get('api/deny')!;
  t.equal((await validate(app, admissionReview({ object: replicaSet() })))?.allowed, true);
  t.equal((await validate(app, scaleReview('mongodb', 3)))?.allowed, true);
  t.equal((await validate(app, serviceDeletion(service('mongodb-headless'))))?.allowed, true);
});
