/**
 * Latency as the API server sees it: kube-apiserver's own
 * apiserver_admission_webhook_admission_duration_seconds for sts-guard during N StatefulSet
 * creates run as a server-side dry run, and for a bare node:https webhook that answers a fixed
 * allow (bench/baseline-server.mjs) during the same creates. Figures go to bench/README.md.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { freePort } from '../support/processes.js';
import { repoPath } from '../support/repo.js';
import { eventually } from '../support/wait.js';
import { freshNamespace, kubectlOk, loadState, scenario } from './support/env.js';
import { type Buckets, count, delta, histogramBuckets, quantile } from './support/histogram.js';

const state = loadState();
const CREATES = Number(process.env.STS_GUARD_E2E_LATENCY_CREATES ?? 300);
const METRIC = 'apiserver_admission_webhook_admission_duration_seconds';

const plane = {
  ca: await readFile(state.clusterCaFile, 'utf8'),
  cert: await readFile(join(state.dir, 'control-plane/admin.crt'), 'utf8'),
  key: await readFile(join(state.dir, 'control-plane/admin.key'), 'utf8'),
};
const agent = new Agent({ keepAlive: true, maxSockets: 1, ...plane });

function call(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${state.server}${path}`,
      { method, agent, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const statefulSet = parseAllDocuments(
  await readFile(`${scenario('compliant-replica-set')}/2-statefulset.yaml`, 'utf8'),
)[0]?.toJS() as {
  metadata: { name: string };
  spec: { replicas: number };
};

/** N creates, one after another, as `kubectl create --dry-run=server` sends them (dryRun=All). */
async function dryRunCreates(namespace: string, creates = CREATES): Promise<number[]> {
  const elapsed: number[] = [];
  for (let i = 0; i < creates; i++) {
    const object = {
      ...statefulSet,
      metadata: { name: `mongodb-${i}` },
      spec: { ...statefulSet.spec, replicas: 3 },
    };
    const started = process.hrtime.bigint();
    const res = await call(
      'POST',
      `/apis/apps/v1/namespaces/${namespace}/statefulsets?dryRun=All`,
      JSON.stringify(object),
    );
    elapsed.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (res.status !== 201) throw new Error(`dry-run create answered ${res.status}: ${res.body}`);
  }
  return elapsed;
}

async function webhookBuckets(webhook: string): Promise<Buckets> {
  const metrics = await call('GET', '/metrics');
  return histogramBuckets(metrics.body, METRIC, { name: webhook, operation: 'CREATE' });
}

const ROUNDS = 10;

/**
 * Both sides in the same run, interleaved: ROUNDS rounds of CREATES/ROUNDS creates each, sts-guard
 * then the bare webhook, so a busy moment of this shared machine falls on both. The histograms are
 * per webhook name, so one scrape before and one after separate them.
 */
async function measureInterleaved(sides: Array<{ namespace: string; webhooks: string[] }>) {
  const all = sides.flatMap((s) => s.webhooks);
  const before = await Promise.all(all.map(webhookBuckets));
  const client: number[][] = sides.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, side] of sides.entries()) {
      client[i]?.push(...(await dryRunCreates(side.namespace, Math.round(CREATES / ROUNDS))));
    }
  }
  const after = await Promise.all(all.map(webhookBuckets));
  const perWebhook = Object.fromEntries(
    all.map((w, i) => {
      const d = delta(after[i] as Buckets, before[i] as Buckets);
      // The histogram's first buckets are 5 ms and 25 ms wide: the share under 5 ms says more
      // than an interpolated p50 inside it.
      const under5ms = (d.get(0.005) ?? 0) / Math.max(count(d), 1);
      return [w, { count: count(d), p50: quantile(d, 0.5) * 1000, p99: quantile(d, 0.99) * 1000, under5ms }];
    }),
  );
  const pick = (values: number[], q: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  };
  return sides.map((side, i) => ({
    perWebhook: Object.fromEntries(side.webhooks.map((w) => [w, perWebhook[w]])),
    createMs: { p50: pick(client[i] ?? [], 0.5), p99: pick(client[i] ?? [], 0.99) },
  }));
}

t.test(`admission latency seen by kube-apiserver over ${CREATES} dry-run creates`, async (t) => {
  await freshNamespace(state, 'latency');
  await kubectlOk(state, [
    'apply',
    '-n',
    'latency',
    '-f',
    `${scenario('compliant-replica-set')}/1-headless-service.yaml`,
  ]);
  // Warm-up creates, so neither side pays for first connections in the figures.
  await dryRunCreates('latency', 5);

  // The same registration pointed at the bare webhook, for a namespace sts-guard is exempt from.
  const port = await freePort();
  const certs = join(state.dir, 'certs');
  const baseline = spawn(process.execPath, [repoPath('bench/baseline-server.mjs')], {
    env: {
      ...process.env,
      PORT: String(port),
      TLS_CERT_FILE: join(certs, 'tls.crt'),
      TLS_KEY_FILE: join(certs, 'tls.key'),
    },
    stdio: 'ignore',
  });
  t.teardown(() => {
    baseline.kill();
  });
  await freshNamespace(state, 'latency-baseline', { 'sts-guard.io/exempt': 'true' });
  await kubectlOk(state, [
    'apply',
    '-n',
    'latency-baseline',
    '-f',
    `${scenario('compliant-replica-set')}/1-headless-service.yaml`,
  ]);
  const registered = parseAllDocuments(await readFile(join(state.dir, 'webhooks.yaml'), 'utf8')).map((d) =>
    d.toJS(),
  );
  const bare = registered.map((config) => ({
    ...config,
    metadata: { name: 'bare-baseline' },
    webhooks: config.webhooks
      .filter((w: { name: string }) => !w.name.startsWith('services.'))
      .map((w: { name: string; clientConfig: { url: string } }) => ({
        ...w,
        name: `bare-${w.name}`,
        clientConfig: {
          ...w.clientConfig,
          url: w.clientConfig.url.replace(state.stsGuard.url, `https://127.0.0.1:${port}`),
        },
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'latency-baseline' } },
      })),
  }));
  await kubectlOk(state, ['apply', '-f', '-'], bare.map((o) => stringify(o)).join('---\n'));
  t.teardown(() =>
    kubectlOk(state, [
      'delete',
      'mutatingwebhookconfiguration,validatingwebhookconfiguration',
      'bare-baseline',
    ]),
  );
  // Until the API server has picked up the new configurations and the bare webhook listens, a
  // create is either not sent to it or refused (failurePolicy: Fail); wait for both to be called.
  await eventually('the API server calling both bare webhooks', async () => {
    await dryRunCreates('latency-baseline', 1).catch(() => undefined);
    const called = await Promise.all(
      ['bare-mutate.sts-guard.io', 'bare-validate.sts-guard.io'].map(async (w) =>
        count(await webhookBuckets(w)),
      ),
    );
    return called.every((n) => n > 0) ? true : undefined;
  });
  await dryRunCreates('latency-baseline', 5);
  const [stsGuard, bareFigures] = await measureInterleaved([
    { namespace: 'latency', webhooks: ['mutate.sts-guard.io', 'validate.sts-guard.io'] },
    { namespace: 'latency-baseline', webhooks: ['bare-mutate.sts-guard.io', 'bare-validate.sts-guard.io'] },
  ]);
  const report = { creates: CREATES, stsGuard, bare: bareFigures };
  t.comment(JSON.stringify(report, null, 2));
  if (process.env.STS_GUARD_E2E_LATENCY_OUT)
    await writeFile(process.env.STS_GUARD_E2E_LATENCY_OUT, JSON.stringify(report, null, 2));

  for (const [name, figures] of [
    ...Object.entries(stsGuard?.perWebhook ?? {}),
    ...Object.entries(bareFigures?.perWebhook ?? {}),
  ]) {
    if (!figures) throw new Error(`no figures for ${name}`);
    t.equal(figures.count, CREATES, `the API server observed ${CREATES} calls to ${name}`);
    t.ok(Number.isFinite(figures.p50) && Number.isFinite(figures.p99), `${name}: p50 and p99 computed`);
  }
});
