/**
 * `npm run bench:peers`: sts-guard, Kyverno (with the equivalent ClusterPolicy of policy.ts) and a
 * bare webhook on one real kube-apiserver, interleaved in rounds so this shared machine's noise
 * falls on all three. For each workload (workloads.ts) and number of concurrent clients:
 *
 * - latency as kube-apiserver sees it: apiserver_admission_webhook_admission_duration_seconds per
 *   webhook name (test/e2e/support/histogram.ts), p50/p95/p99 interpolated inside its buckets;
 * - latency as the client sees it: the whole dry-run request, exact;
 * - CPU per request of each webhook server process (/proc/<pid>/task/x/schedstat, bench/servers.ts);
 * - RSS of each process after the run;
 * and first, verdict parity of sts-guard and Kyverno on the corpus (corpus.ts).
 *
 *   npm run bench:peers                      the full run (about 10 minutes on 2 shared cores)
 *   npm run bench:peers -- --rounds 5 --batch1 100 --batch16 320   the defaults, spelled out
 *   npm run bench:peers -- --smoke           every part, briefly: proves the harness works
 *   npm run bench:peers -- --parity-only     the corpus only
 *   npm run bench:peers -- --out peers.json  also write every figure as JSON
 *   npm run bench:peers -- --keep            keep the state directory (logs, kubeconfigs)
 *   npm run bench:peers -- --workloads mongodb-update --clients 1   some cells only
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Buckets, count, delta, histogramBuckets, quantile } from '../../test/e2e/support/histogram.js';
import { cpuSeconds, ensureBuilt, rssBytes, STS_GUARD_ENTRY } from '../servers.js';
import { median } from '../stats.js';
import { PEERS, type PeerName, type PeersCluster, startPeersCluster } from './cluster.js';
import { loadCorpus, type ParityRow, parity } from './corpus.js';
import { LEFT_OUT } from './policy.js';
import { type PeerWorkload, prepareWorkloads } from './workloads.js';

const flag = (name: string) => process.argv.includes(`--${name}`);
const option = (name: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const smoke = flag('smoke');
const plan = {
  rounds: Number(option('rounds') ?? (smoke ? 1 : 5)),
  /** Requests per peer per round, by number of concurrent clients. */
  batch: {
    1: Number(option('batch1') ?? (smoke ? 5 : 100)),
    16: Number(option('batch16') ?? (smoke ? 32 : 320)),
  },
  warmup: smoke ? 3 : 20,
  idleSec: smoke ? 1 : 10,
};
const CONCURRENCY = [1, 16] as const;
const METRIC = 'apiserver_admission_webhook_admission_duration_seconds';

const started = performance.now();
const log = (line: string) =>
  process.stderr.write(
    `bench:peers ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s  ${line}\n`,
  );
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface WebhookFigures {
  calls: number;
  p50: number;
  p95: number;
  p99: number;
  /** Share of calls the histogram puts at or under 5 ms (its first bucket). */
  under5ms: number;
}

interface CellFigures {
  workload: PeerWorkload['id'];
  label: string;
  concurrency: number;
  peers: Record<
    PeerName,
    {
      requests: number;
      mutate: WebhookFigures;
      validate: WebhookFigures;
      client: { p50: number; p95: number; p99: number };
      /** The server's own histogram of its review time (both webhooks), where it keeps one. */
      own?: WebhookFigures;
      /** CPU µs per request, one figure per round. */
      cpuPerRequest: number[];
    }
  >;
}

const pick = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

async function scrape(cluster: PeersCluster, operation: string): Promise<Map<string, Buckets>> {
  const text = await cluster.plane.apiserverMetrics();
  const names = PEERS.flatMap((p) => Object.values(cluster.peers[p].webhooks));
  return new Map(names.map((name) => [name, histogramBuckets(text, METRIC, { name, operation })]));
}

function webhookFigures(d: Buckets): WebhookFigures {
  const calls = count(d);
  return {
    calls,
    p50: quantile(d, 0.5) * 1000,
    p95: quantile(d, 0.95) * 1000,
    p99: quantile(d, 0.99) * 1000,
    under5ms: calls > 0 ? (d.get(0.005) ?? 0) / calls : Number.NaN,
  };
}

/** `total` requests from `concurrency` clients on kept-alive connections; the latencies in ms. */
async function batch(
  cluster: PeersCluster,
  w: PeerWorkload,
  namespace: string,
  total: number,
  concurrency: number,
): Promise<number[]> {
  const agent = cluster.agent(concurrency);
  const latencies: number[] = [];
  let sent = 0;
  const body = w.body(namespace);
  const path = w.path(namespace);
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (sent < total) {
          sent++;
          const t0 = performance.now();
          const answer = await cluster.api(agent, w.method, path, body);
          latencies.push(performance.now() - t0);
          if (answer.status !== w.status) {
            throw new Error(`${w.label} in ${namespace}: ${answer.status} ${answer.body.slice(0, 500)}`);
          }
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return latencies;
}

const namespaceOf = (peer: PeerName) => `peers-${peer}`;

async function measureCell(
  cluster: PeersCluster,
  w: PeerWorkload,
  concurrency: 1 | 16,
): Promise<CellFigures> {
  const n = plan.batch[concurrency];
  // Warm-up: connections, caches and JIT of every side, outside the histograms' window.
  for (const peer of PEERS) await batch(cluster, w, namespaceOf(peer), plan.warmup, concurrency);
  const own = async () =>
    Object.fromEntries(
      await Promise.all(
        PEERS.map(async (p) => {
          const o = cluster.peers[p].own;
          return [p, o ? histogramBuckets(await o.scrape(), o.metric, {}) : undefined] as const;
        }),
      ),
    );
  const ownBefore = await own();
  const before = await scrape(cluster, w.operation);
  const client: Record<PeerName, number[]> = { 'sts-guard': [], kyverno: [], bare: [] };
  const cpu: Record<PeerName, number[]> = { 'sts-guard': [], kyverno: [], bare: [] };
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < PEERS.length; i++) {
      const peer = PEERS[(i + round) % PEERS.length]!;
      const pid = cluster.peers[peer].pid;
      const cpuBefore = cpuSeconds(pid);
      client[peer].push(...(await batch(cluster, w, namespaceOf(peer), n, concurrency)));
      cpu[peer].push(((cpuSeconds(pid) - cpuBefore) / n) * 1e6);
    }
  }
  const after = await scrape(cluster, w.operation);
  const ownAfter = await own();
  const figures = (name: string) => webhookFigures(delta(after.get(name)!, before.get(name)!));
  const peers = Object.fromEntries(
    PEERS.map((peer) => [
      peer,
      {
        requests: n * plan.rounds,
        mutate: figures(cluster.peers[peer].webhooks.mutate),
        validate: figures(cluster.peers[peer].webhooks.validate),
        client: {
          p50: pick(client[peer], 0.5),
          p95: pick(client[peer], 0.95),
          p99: pick(client[peer], 0.99),
        },
        own: (() => {
          const [a, b] = [ownAfter[peer], ownBefore[peer]];
          return a && b ? webhookFigures(delta(a, b)) : undefined;
        })(),
        cpuPerRequest: cpu[peer],
      },
    ]),
  ) as CellFigures['peers'];
  return { workload: w.id, label: w.label, concurrency, peers };
}

/** Each process's CPU while nothing is sent: informers, leases, timers (µs per second). */
async function idleCpu(cluster: PeersCluster): Promise<Record<PeerName, number>> {
  const before = Object.fromEntries(PEERS.map((p) => [p, cpuSeconds(cluster.peers[p].pid)]));
  await sleep(plan.idleSec * 1000);
  return Object.fromEntries(
    PEERS.map((p) => [p, ((cpuSeconds(cluster.peers[p].pid) - before[p]!) / plan.idleSec) * 1e6]),
  ) as Record<PeerName, number>;
}

const f1 = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : '–');
const pct = (v: number) => (Number.isFinite(v) ? `${Math.round(v * 100)}%` : '–');
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;

function renderParity(rows: ParityRow[]): string {
  const lines = [
    'Verdict parity: server-side dry-run create of each corpus StatefulSet through sts-guard and through Kyverno',
    '',
  ];
  for (const r of rows) {
    const v = (x: ParityRow['verdicts']['sts-guard']) => (x.allowed ? 'admit' : 'deny');
    const part = r.outside ? `outside the common part (${r.outside})` : 'common part';
    lines.push(
      `${r.agree ? 'same' : 'DIFF'}  ${r.source}: sts-guard ${v(r.verdicts['sts-guard'])}, Kyverno ${v(r.verdicts.kyverno)}; ${r.why} [${part}]`,
    );
  }
  const common = rows.filter((r) => !r.outside);
  lines.push(
    '',
    `common part: ${common.filter((r) => r.agree).length} of ${common.length} cases agree; outside it: ${rows.filter((r) => r.outside && r.agree).length} of ${rows.filter((r) => r.outside).length}`,
  );
  return lines.join('\n');
}

function renderCells(cells: CellFigures[]): string {
  const header = [
    'workload',
    'clients',
    'webhook',
    'calls M/V',
    'mutate p50/p95/p99 ms',
    'validate p50/p95/p99 ms',
    '≤5 ms M/V',
    'own p50/p99 ms',
    'client p50/p95/p99 ms',
    'CPU µs/request [range]',
  ];
  const rows: string[][] = [];
  for (const cell of cells) {
    for (const peer of PEERS) {
      const p = cell.peers[peer];
      const q = (w: WebhookFigures) =>
        w.calls > 0 ? `${f1(w.p50)}/${f1(w.p95)}/${f1(w.p99)}` : 'not called';
      rows.push([
        cell.label,
        String(cell.concurrency),
        peer,
        `${p.mutate.calls}/${p.validate.calls}`,
        q(p.mutate),
        q(p.validate),
        `${pct(p.mutate.under5ms)}/${pct(p.validate.under5ms)}`,
        p.own && p.own.calls > 0 ? `${f1(p.own.p50)}/${f1(p.own.p99)}` : '–',
        `${f1(p.client.p50)}/${f1(p.client.p95)}/${f1(p.client.p99)}`,
        `${Math.round(median(p.cpuPerRequest))} [${Math.round(Math.min(...p.cpuPerRequest))}–${Math.round(Math.max(...p.cpuPerRequest))}]`,
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Pauses of each kind of V8 collection between two scrapes: how many, their sum, how many over 10 ms. */
function gcSummary(before: string, after: string): string {
  const metric = 'nodejs_gc_duration_seconds';
  const sum = (text: string, kind: string) =>
    Number(new RegExp(`^${metric}_sum\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return ['minor', 'major', 'incremental']
    .map((kind) => {
      const d = delta(histogramBuckets(after, metric, { kind }), histogramBuckets(before, metric, { kind }));
      const over10ms = count(d) - (d.get(0.01) ?? 0);
      return `${kind} ${count(d)} (${((sum(after, kind) - sum(before, kind)) * 1000).toFixed(0)} ms in all, ${over10ms} over 10 ms)`;
    })
    .join(', ');
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  await ensureBuilt(log);
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-peers-'));
  let cluster: PeersCluster | undefined;
  let status = 1;
  try {
    cluster = await startPeersCluster(dir, { stsGuardEntry: STS_GUARD_ENTRY });
    log('verdict parity on the corpus');
    const parityRows = await parity(cluster, await loadCorpus(join(cluster.binDir, 'kustomize')));
    process.stdout.write(`${renderParity(parityRows)}\n\n`);
    const commonAgrees = parityRows.filter((r) => !r.outside).every((r) => r.agree);
    if (flag('parity-only')) {
      status = commonAgrees ? 0 : 1;
      return status;
    }
    for (const peer of PEERS) await cluster.namespace(namespaceOf(peer), peer);
    const workloads = await prepareWorkloads(cluster, PEERS.map(namespaceOf));
    const rssStart = Object.fromEntries(PEERS.map((p) => [p, rssBytes(cluster!.peers[p].pid)]));
    const gcStart = await cluster.peers['sts-guard'].own?.scrape();
    log(`idle CPU over ${plan.idleSec} s`);
    const idle = await idleCpu(cluster);
    const cells: CellFigures[] = [];
    const onlyWorkloads = option('workloads')?.split(',');
    const onlyClients = option('clients')?.split(',').map(Number);
    for (const concurrency of CONCURRENCY.filter((c) => !onlyClients || onlyClients.includes(c))) {
      for (const w of workloads.filter((x) => !onlyWorkloads || onlyWorkloads.includes(x.id))) {
        log(
          `${w.label}, ${concurrency} client(s): ${plan.rounds} rounds of ${plan.batch[concurrency]} per webhook`,
        );
        cells.push(await measureCell(cluster, w, concurrency));
      }
    }
    const rssEnd = Object.fromEntries(PEERS.map((p) => [p, rssBytes(cluster!.peers[p].pid)]));
    const gcEnd = await cluster.peers['sts-guard'].own?.scrape();
    const requests = cells.reduce((sum, c) => sum + c.peers.bare.requests + plan.warmup, 0);
    const loadAfter = loadAverage();
    const buckets = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 25].map((s) => `${s * 1000}`).join(', ');
    process.stdout.write(
      [
        `sts-guard, Kyverno and a bare webhook on one kube-apiserver (${smoke ? 'smoke run: no figure to keep' : `${plan.rounds} interleaved rounds`}) · node ${process.version}`,
        '',
        renderCells(cells),
        '',
        `note: kube-apiserver's ${METRIC} buckets end at ${buckets} ms; p50/p95/p99 are interpolated inside them (as histogram_quantile does), so below 5 ms they only say "under 5 ms"; the ≤5 ms column is the share of calls in that first bucket`,
        "note: own = the server's own histogram of the time it spends per review, both webhooks (sts-guard: sts_guard_review_duration_seconds, buckets from 0.5 ms; Kyverno: kyverno_admission_review_duration_seconds, buckets from 5 ms as its chart configures them), interpolated likewise",
        `note: client = the whole dry-run request as the client sees it (kept-alive TLS to kube-apiserver, admin certificate), exact; calls M/V = the API server's calls to the peer's mutating/validating StatefulSet webhook`,
        `note: CPU µs/request = the webhook server process's CPU (all threads, schedstat) during its batch ÷ requests, median of ${plan.rounds} rounds [min–max]; idle CPU (µs per second, nothing sent, ${plan.idleSec} s): ${PEERS.map((p) => `${p} ${Math.round(idle[p])}`).join(', ')}`,
        `note: sts-guard's garbage collector during the timed part (prom-client's nodejs_gc_duration_seconds): ${gcStart && gcEnd ? gcSummary(gcStart, gcEnd) : 'not read'}`,
        `note: RSS at the start of the timed part → after ${requests.toLocaleString('en-US')} requests: ${PEERS.map((p) => `${p} ${mb(rssStart[p]!)} → ${mb(rssEnd[p]!)}`).join(', ')}`,
        `note: Kyverno leaves out (policy.ts LEFT_OUT): ${LEFT_OUT.join('; ')}`,
        `note: load average (1, 5, 15 min) ${loadBefore} before, ${loadAfter} after`,
        '',
      ].join('\n'),
    );
    const out = option('out');
    if (out) {
      await writeFile(
        out,
        JSON.stringify(
          { plan, loadBefore, loadAfter, parity: parityRows, cells, idle, rssStart, rssEnd },
          null,
          2,
        ),
      );
    }
    status = commonAgrees ? 0 : 1;
    return status;
  } finally {
    await cluster?.stop();
    if (flag('keep') || status !== 0) log(`state and logs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(
      `bench:peers failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exitCode = 1;
  },
);
