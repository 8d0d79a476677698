/**
 * This build with and without V8 heap flags, side by side: CPU per review of one CPU-table workload
 * (bench/workloads.ts) in interleaved rounds, and RSS after a fixed number of reviews of the
 * throughput mix. Written for Node 24's larger young generation (bench/README.md, "Node.js 24
 * against Node.js 20"): what `--max-semi-space-size` saves in RSS and costs in CPU.
 *
 *   node --import tsx bench/heap-flags.ts [--workload create-mutate] [--rounds 8] \
 *     [--flags --max-semi-space-size=16]
 */
import autocannon from 'autocannon';
import { cpuSeconds, ensureBuilt, prepareEnvironment, rssBytes, startServer } from './servers.js';
import { median } from './stats.js';
import { cpuWorkloads, workloads } from './workloads.js';

const option = (name: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const workload = cpuWorkloads().find((w) => w.id === (option('workload') ?? 'create-validate'));
if (workload?.status !== 200) throw new Error('--workload: an admitted workload of the CPU table');
const rounds = Number(option('rounds') ?? 8);
const flags = (option('flags') ?? '--max-semi-space-size=16').split(' ');

await ensureBuilt((line) => console.error(line));
const env = await prepareEnvironment();
const list = workloads();
const json = { 'content-type': 'application/json' };
const mix = list.flatMap((w) =>
  (['/mutate', '/validate'] as const).map((path) => ({ method: 'POST' as const, path, body: w.body })),
);
const variants = [
  { label: 'no flags', nodeFlags: [] as string[] },
  { label: flags.join(' '), nodeFlags: flags },
].map(async (v) => ({
  ...v,
  server: await startServer(
    'sts-guard',
    env,
    { serviceCache: 'on', nodeFlags: v.nodeFlags },
    {
      path: '/mutate',
      body: list[0]!.body,
    },
  ),
  cpu: [] as number[],
  rss: [] as number[],
}));
const servers = await Promise.all(variants);
try {
  // RSS as the full run reads it: the /mutate and /validate mix, sampled every 10,000 reviews.
  for (const s of servers) {
    for (let i = 0; i < 4; i++) {
      await autocannon({
        url: s.server.origin,
        connections: 10,
        amount: 10_000,
        headers: json,
        requests: mix,
      });
      s.rss.push(rssBytes(s.server.pid) / 1048576);
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const s of round % 2 === 0 ? servers : [...servers].reverse()) {
      const before = cpuSeconds(s.server.pid);
      const result = await autocannon({
        url: s.server.origin,
        connections: 10,
        amount: 5000,
        sampleInt: 100,
        headers: json,
        requests: [{ method: 'POST', path: workload.path, body: workload.body }],
      });
      s.cpu.push(((cpuSeconds(s.server.pid) - before) / result.requests.total) * 1e6);
    }
  }
  const [base] = servers;
  for (const s of servers) {
    const ratio = median(s.cpu.map((v, i) => v / base!.cpu[i]!));
    process.stdout.write(
      `${s.label.padEnd(30)} ${workload.label}: CPU ${median(s.cpu).toFixed(0)} µs/review [${Math.min(...s.cpu).toFixed(0)}–${Math.max(...s.cpu).toFixed(0)}], ${ratio.toFixed(2)}× (paired); RSS every 10,000 reviews of the mix: ${s.rss.map((r) => r.toFixed(0)).join(' ')} MB\n`,
    );
  }
} finally {
  for (const s of servers) await s.server.stop();
  await env.close();
}
