/**
 * On the Lambda path: the cold start as kube-apiserver sees it, and warm latency against the
 * Deployment path (`npm start`) in the same run. Figures go to bench/README.md and
 * docs/deploy.md; STS_GUARD_E2E_LAMBDA_OUT also writes them to a JSON file.
 *
 * Cold: the function is restarted (a new execution environment: emulator and runtime), and the
 * next dry-run create is the first review it gets: the mutation (mutating webhooks run first),
 * whose duration kube-apiserver records in apiserver_admission_webhook_admission_duration_seconds.
 * The histogram only says which bucket it fell in; the front's journal has it to the millisecond,
 * and the emulator's log splits it into the init phase (INIT REPORT) and the invocation.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import t from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { eventually } from '../../support/wait.js';
import {
  adminApi,
  compliantStatefulSet,
  dryRunCreate,
  dryRunCreates,
  measureInterleaved,
  observedBucket,
  pick,
  webhookBuckets,
} from '../support/admission-latency.js';
import { freshNamespace, kubectlOk, scenario } from '../support/env.js';
import { readJournal } from '../support/function-url.js';
import { count } from '../support/histogram.js';
import { FUNCTION_MEMORY_MB, loadLambdaState, reports, restartLambdaFunction } from '../support/lambda.js';
import { renderWebhooks } from '../support/setup.js';

const state = loadLambdaState();
const COLD_STARTS = Number(process.env.STS_GUARD_E2E_LAMBDA_COLD_STARTS ?? 5);
const CREATES = Number(process.env.STS_GUARD_E2E_LATENCY_CREATES ?? 300);
const call = await adminApi(state);
const statefulSet = await compliantStatefulSet();
const registered = parseAllDocuments(await readFile(`${state.dir}/webhooks.yaml`, 'utf8')).map(
  (d) => d.toJS() as { kind: string; webhooks: Array<{ name: string; timeoutSeconds?: number }> },
);
const timeoutSeconds = registered
  .find((c) => c.kind === 'MutatingWebhookConfiguration')
  ?.webhooks.find((w) => w.name === 'mutate.sts-guard.io')?.timeoutSeconds;

interface ColdStart {
  /** kube-apiserver's histogram bucket of the first review (the mutation), in seconds. */
  apiserverBucket: { lower: number; upper: number } | undefined;
  /** The same review at the front, ms: the function's init plus its first invocation. */
  frontMs: number;
  /** The runtime's init phase (the emulator's INIT REPORT), ms. */
  initMs: number;
  /** The second review of the same create (the validation), at the front, ms. */
  secondReviewMs: number;
  /** The whole create as its client saw it, ms. */
  createMs: number;
  status: number;
  /** The API server's message when the create failed (a webhook timeout). */
  refusal?: string;
}

const report: Record<string, unknown> = {
  memoryMb: FUNCTION_MEMORY_MB,
  timeoutSeconds,
  limits: state.lambda.function.limits,
  loadAverageAtStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
};

t.before(async () => {
  await freshNamespace(state, 'lambda-latency');
  await kubectlOk(state, [
    'apply',
    '-n',
    'lambda-latency',
    '-f',
    `${scenario('compliant-replica-set')}/1-headless-service.yaml`,
  ]);
});

t.test(`${COLD_STARTS} cold starts: the first review after the function starts`, async (t) => {
  const colds: ColdStart[] = [];
  for (let i = 0; i < COLD_STARTS; i++) {
    await restartLambdaFunction(state);
    const logFrom = statSync(state.lambda.function.spec.logFile).size;
    const journalFrom = readJournal(state.lambda.journal).length;
    const before = await webhookBuckets(call, 'mutate.sts-guard.io');
    const object = {
      ...statefulSet,
      metadata: { name: `mongodb-cold-${i}` },
      spec: { ...statefulSet.spec, replicas: 3 },
    };
    const created = await dryRunCreate(call, 'lambda-latency', object);
    const after = await eventually('the API server to record the review', async () => {
      const buckets = await webhookBuckets(call, 'mutate.sts-guard.io');
      return count(buckets) > count(before) ? buckets : undefined;
    });
    // When the API server gave up (timeoutSeconds), the function still answers the front later.
    const served = await eventually(
      'the front to answer the first review',
      async () => {
        const lines = readJournal(state.lambda.journal).slice(journalFrom);
        return lines.length > 0 ? lines : undefined;
      },
      20_000,
    );
    const log = readFileSync(state.lambda.function.spec.logFile, 'utf8').slice(logFrom);
    const initMs = Number(/INIT REPORT\(durationMs: ([\d.]+)\)/.exec(log)?.[1]);
    colds.push({
      apiserverBucket: observedBucket(after, before),
      frontMs: served[0]?.durationMs ?? Number.NaN,
      initMs,
      secondReviewMs: served[1]?.durationMs ?? Number.NaN,
      createMs: created.ms,
      status: created.status,
      ...(created.status === 201
        ? {}
        : { refusal: (JSON.parse(created.body) as { message?: string }).message }),
    });
    t.equal(served[0]?.path, '/mutate', `start ${i + 1}: the first review after the start is the mutation`);
    t.ok(Number.isFinite(initMs), `start ${i + 1}: the runtime went through an init phase (${initMs} ms)`);
    t.equal(
      created.status,
      201,
      `start ${i + 1}: the create is admitted: the cold review (${Math.round(colds.at(-1)?.frontMs ?? 0)} ms at the front) fits in timeoutSeconds ${timeoutSeconds}`,
    );
  }
  report.cold = {
    starts: colds,
    frontMs: {
      median: pick(
        colds.map((c) => c.frontMs),
        0.5,
      ),
      max: Math.max(...colds.map((c) => c.frontMs)),
    },
    initMs: {
      median: pick(
        colds.map((c) => c.initMs),
        0.5,
      ),
      max: Math.max(...colds.map((c) => c.initMs)),
    },
  };
});

t.test(
  `warm: ${CREATES} dry-run creates on the Lambda path and on the Deployment path, interleaved`,
  async (t) => {
    // The Deployment path: the same registration pointed at `npm start`, for a namespace that the
    // Lambda path's webhooks skip (sts-guard.io/exempt=true).
    const ns = 'lambda-latency-deployment';
    await freshNamespace(state, ns, { 'sts-guard.io/exempt': 'true' });
    await kubectlOk(state, [
      'apply',
      '-n',
      ns,
      '-f',
      `${scenario('compliant-replica-set')}/1-headless-service.yaml`,
    ]);
    const rendered = parseAllDocuments(
      await renderWebhooks(
        state.binDir,
        `${state.dir}/deployment-path`,
        `127.0.0.1:${state.stsGuardPort}`,
        await readFile(state.stsGuard.caFile, 'utf8'),
      ),
    ).map((d) => d.toJS());
    const deployment = rendered.map((config) => ({
      ...config,
      metadata: { name: 'sts-guard-deployment-path' },
      webhooks: config.webhooks
        .filter((w: { name: string }) => !w.name.startsWith('services.'))
        .map((w: { name: string }) => ({
          ...w,
          name: `deployment-${w.name}`,
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        })),
    }));
    await kubectlOk(state, ['apply', '-f', '-'], deployment.map((o) => stringify(o)).join('---\n'));
    t.teardown(() =>
      kubectlOk(state, [
        'delete',
        'mutatingwebhookconfiguration,validatingwebhookconfiguration',
        'sts-guard-deployment-path',
      ]),
    );
    await eventually('the API server calling the Deployment path', async () => {
      await dryRunCreates(call, ns, statefulSet, 1).catch(() => undefined);
      const called = await Promise.all(
        ['deployment-mutate.sts-guard.io', 'deployment-validate.sts-guard.io'].map(async (w) =>
          count(await webhookBuckets(call, w)),
        ),
      );
      return called.every((n) => n > 0) ? true : undefined;
    });
    // Warm both: connections, the function's client, the server's Service cache.
    await dryRunCreates(call, 'lambda-latency', statefulSet, 5);
    await dryRunCreates(call, ns, statefulSet, 5);
    const journalFrom = readJournal(state.lambda.journal).length;
    const logFrom = statSync(state.lambda.function.spec.logFile).size;
    const [lambda, deploymentPath] = await measureInterleaved(
      call,
      statefulSet,
      [
        { namespace: 'lambda-latency', webhooks: ['mutate.sts-guard.io', 'validate.sts-guard.io'] },
        { namespace: ns, webhooks: ['deployment-mutate.sts-guard.io', 'deployment-validate.sts-guard.io'] },
      ],
      CREATES,
    );
    const front = readJournal(state.lambda.journal)
      .slice(journalFrom)
      .map((i) => i.durationMs);
    // The emulator's REPORT Duration: the invocation inside the function, without the hops to it.
    const inside = reports(state.lambda.function.spec.logFile, logFrom).map((r) => r.durationMs);
    report.warm = {
      creates: CREATES,
      lambda,
      deployment: deploymentPath,
      lambdaAtTheFront: { reviews: front.length, p50: pick(front, 0.5), p99: pick(front, 0.99) },
      lambdaInvocation: { reviews: inside.length, p50: pick(inside, 0.5), p99: pick(inside, 0.99) },
    };
    for (const [name, figures] of [
      ...Object.entries(lambda?.perWebhook ?? {}),
      ...Object.entries(deploymentPath?.perWebhook ?? {}),
    ]) {
      t.equal(figures.count, CREATES, `the API server observed ${CREATES} calls to ${name}`);
      t.ok(Number.isFinite(figures.p50) && Number.isFinite(figures.p99), `${name}: p50 and p99 computed`);
    }
    t.equal(front.length, 2 * CREATES, 'every Lambda-path review went through the front');
    t.equal(inside.length, 2 * CREATES, 'and was one invocation of the function');
  },
);

t.test('the figures', async (t) => {
  report.loadAverageAtEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  t.comment(JSON.stringify(report, null, 2));
  if (process.env.STS_GUARD_E2E_LAMBDA_OUT) {
    await writeFile(process.env.STS_GUARD_E2E_LAMBDA_OUT, JSON.stringify(report, null, 2));
  }
  t.ok(report.cold && report.warm, 'cold and warm figures were taken');
});
