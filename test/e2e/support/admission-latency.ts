/**
 * Admission latency as kube-apiserver sees it: StatefulSet creates sent as a server-side dry run
 * (what `kubectl create --dry-run=server` sends), timed by the client, and kube-apiserver's own
 * apiserver_admission_webhook_admission_duration_seconds histogram read before and after.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { E2eState } from './env.js';
import { scenario } from './env.js';
import { type Buckets, count, delta, histogramBuckets, quantile } from './histogram.js';

export const ADMISSION_DURATION = 'apiserver_admission_webhook_admission_duration_seconds';

export type ApiCall = (
  method: string,
  path: string,
  body?: string,
) => Promise<{ status: number; body: string }>;

/** A kept-alive client of the API server as the cluster admin (the control plane's admin certificate). */
export async function adminApi(state: E2eState): Promise<ApiCall> {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: await readFile(state.clusterCaFile, 'utf8'),
    cert: await readFile(join(state.dir, 'control-plane/admin.crt'), 'utf8'),
    key: await readFile(join(state.dir, 'control-plane/admin.key'), 'utf8'),
  });
  return (method, path, body) =>
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

/** The compliant replica set of test/e2e/scenarios (a MongoDB, so both sts-guard webhooks are called). */
export async function compliantStatefulSet(): Promise<{
  metadata: { name: string };
  spec: { replicas: number };
}> {
  const text = await readFile(join(scenario('compliant-replica-set'), '2-statefulset.yaml'), 'utf8');
  return parseAllDocuments(text)[0]?.toJS() as { metadata: { name: string }; spec: { replicas: number } };
}

/** One server-side dry-run create: its wall time (ms) and the API server's answer. */
export async function dryRunCreate(
  call: ApiCall,
  namespace: string,
  object: unknown,
): Promise<{ ms: number; status: number; body: string }> {
  const started = process.hrtime.bigint();
  const res = await call(
    'POST',
    `/apis/apps/v1/namespaces/${namespace}/statefulsets?dryRun=All`,
    JSON.stringify(object),
  );
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, ...res };
}

/** N dry-run creates, one after another, of 3-member copies of `statefulSet`; each must be admitted. */
export async function dryRunCreates(
  call: ApiCall,
  namespace: string,
  statefulSet: { metadata: { name: string }; spec: { replicas: number } },
  creates: number,
): Promise<number[]> {
  const elapsed: number[] = [];
  for (let i = 0; i < creates; i++) {
    const object = {
      ...statefulSet,
      metadata: { name: `mongodb-${i}` },
      spec: { ...statefulSet.spec, replicas: 3 },
    };
    const res = await dryRunCreate(call, namespace, object);
    if (res.status !== 201) throw new Error(`dry-run create answered ${res.status}: ${res.body}`);
    elapsed.push(res.ms);
  }
  return elapsed;
}

/** The histogram's CREATE series of one webhook (by its name in the configuration). */
export async function webhookBuckets(call: ApiCall, webhook: string): Promise<Buckets> {
  const metrics = await call('GET', '/metrics');
  return histogramBuckets(metrics.body, ADMISSION_DURATION, { name: webhook, operation: 'CREATE' });
}

/** The bucket the single observation between two scrapes fell in: (lower, upper] in seconds. */
export function observedBucket(
  after: Buckets,
  before: Buckets,
): { lower: number; upper: number } | undefined {
  const d = [...delta(after, before)].sort((a, b) => a[0] - b[0]);
  let lower = 0;
  for (const [le, n] of d) {
    if (n > 0) return { lower, upper: le };
    lower = le;
  }
  return undefined;
}

export const pick = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

export interface SideFigures {
  /** Per webhook, from kube-apiserver's histogram: count, p50 and p99 in ms, share under 5 ms. */
  perWebhook: Record<string, { count: number; p50: number; p99: number; under5ms: number }>;
  /** The whole dry-run create as its client timed it, in ms. */
  createMs: { p50: number; p99: number };
}

/**
 * Several sides in the same run, interleaved: `rounds` rounds of creates/rounds creates each, one
 * side after the other, so a busy moment of this shared machine falls on all of them.
 */
export async function measureInterleaved(
  call: ApiCall,
  statefulSet: { metadata: { name: string }; spec: { replicas: number } },
  sides: Array<{ namespace: string; webhooks: string[] }>,
  creates: number,
  rounds = 10,
): Promise<SideFigures[]> {
  const all = sides.flatMap((s) => s.webhooks);
  const before = await Promise.all(all.map((w) => webhookBuckets(call, w)));
  const client: number[][] = sides.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, side] of sides.entries()) {
      client[i]?.push(
        ...(await dryRunCreates(call, side.namespace, statefulSet, Math.round(creates / rounds))),
      );
    }
  }
  const after = await Promise.all(all.map((w) => webhookBuckets(call, w)));
  const perWebhook = Object.fromEntries(
    all.map((w, i) => {
      const d = delta(after[i] as Buckets, before[i] as Buckets);
      const under5ms = (d.get(0.005) ?? 0) / Math.max(count(d), 1);
      return [w, { count: count(d), p50: quantile(d, 0.5) * 1000, p99: quantile(d, 0.99) * 1000, under5ms }];
    }),
  );
  return sides.map((side, i) => ({
    perWebhook: Object.fromEntries(side.webhooks.map((w) => [w, perWebhook[w]])) as SideFigures['perWebhook'],
    createMs: { p50: pick(client[i] ?? [], 0.5), p99: pick(client[i] ?? [], 0.99) },
  }));
}
