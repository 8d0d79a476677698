/**
 * `npm run bench:latency`: latency as the API server sees it. Starts the e2e stack (the real
 * control plane and sts-guard, test/e2e/support/stack.ts), then reads kube-apiserver's own
 * apiserver_admission_webhook_admission_duration_seconds for sts-guard during N StatefulSet creates
 * run as a server-side dry run, and for a bare node:https webhook that answers a fixed allow
 * (bench/baseline-server.mjs) during the same creates. Figures in bench/README.md.
 *
 *   npm run bench:latency                          300 creates per side
 *   npm run bench:latency -- --creates 600 --out figures.json
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { type E2eState, freshNamespace, kubectlOk, scenario } from '../test/e2e/support/env.js';
import { type Buckets, count, delta, histogramBuckets, quantile } from '../test/e2e/support/histogram.js';
import { registrationFor } from '../test/e2e/support/setup.js';
import { say, startE2eStack } from '../test/e2e/support/stack.js';
import { freePort } from '../test/support/processes.js';
import { repoPath } from '../test/support/repo.js';
import { eventually } from '../test/support/wait.js';

const option = (name: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const CREATES = Number(option('creates') ?? 300);
const OUT = option('out');
const METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
const ROUNDS = 10;

/** The API server as its admin, over one kept-alive connection, as a client writing in a loop. */
async function apiServer(state: E2eState) {
  const credentials = {
    ca: await readFile(state.clusterCaFile, 'utf8'),
    cert: await readFile(join(state.dir, 'control-plane/admin.crt'), 'utf8'),
    key: await readFile(join(state.dir, 'control-plane/admin.key'), 'utf8'),
  };
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ...credentials });
  return (method: string, path: string, body?: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
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

async function measure(state: E2eState) {
  const call = await apiServer(state);
  const statefulSet = parseAllDocuments(
    await readFile(`${scenario('compliant-replica-set')}/2-statefulset.yaml`, 'utf8'),
  )[0]?.toJS() as { metadata: { name: string }; spec: { replicas: number } };

  /** N creates, one after another, as `kubectl create --dry-run=server` sends them (dryRun=All). */
  async function dryRunCreates(namespace: string, creates: number): Promise<number[]> {
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

  const webhookBuckets = async (webhook: string): Promise<Buckets> =>
    histogramBuckets((await call('GET', '/metrics')).body, METRIC, { name: webhook, operation: 'CREATE' });

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
        return [
          w,
          { count: count(d), p50: quantile(d, 0.5) * 1000, p99: quantile(d, 0.99) * 1000, under5ms },
        ];
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

  const headlessService = `${scenario('compliant-replica-set')}/1-headless-service.yaml`;
  await freshNamespace(state, 'latency');
  await kubectlOk(state, ['apply', '-n', 'latency', '-f', headlessService]);
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
  try {
    await freshNamespace(state, 'latency-baseline', { 'sts-guard.io/exempt': 'true' });
    await kubectlOk(state, ['apply', '-n', 'latency-baseline', '-f', headlessService]);
    const bare = registrationFor(await readFile(join(state.dir, 'webhooks.yaml'), 'utf8'), {
      prefix: 'bare',
      fromUrl: state.stsGuard.url,
      toUrl: `https://127.0.0.1:${port}`,
      namespace: 'latency-baseline',
    });
    await kubectlOk(state, ['apply', '-f', '-'], bare);
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
    return { creates: CREATES, stsGuard, bare: bareFigures };
  } finally {
    baseline.kill();
  }
}

/** A figure over calls the API server did not make means nothing: every webhook must see every create. */
function checkCounts(report: Awaited<ReturnType<typeof measure>>): void {
  for (const [name, figures] of [
    ...Object.entries(report.stsGuard?.perWebhook ?? {}),
    ...Object.entries(report.bare?.perWebhook ?? {}),
  ]) {
    if (!figures) throw new Error(`no figures for ${name}`);
    if (figures.count !== CREATES) {
      throw new Error(`the API server observed ${figures.count} calls to ${name}, not ${CREATES}`);
    }
    if (!Number.isFinite(figures.p50) || !Number.isFinite(figures.p99)) {
      throw new Error(`${name}: p50 and p99 could not be computed`);
    }
  }
}

const stack = await startE2eStack();
let failed = true;
try {
  const report = await measure(stack.state);
  checkCounts(report);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (OUT) await writeFile(OUT, JSON.stringify(report, null, 2));
  failed = false;
} catch (error) {
  say(`bench:latency failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await stack.stop(failed);
}
process.exitCode = failed ? 1 : 0;
