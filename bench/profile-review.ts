/**
 * Where one kind of review spends its CPU: sts-guard's bundle under `node --cpu-prof`, a fixed
 * number of one CPU-table workload (bench/workloads.ts) driven by the load generator (load.ts) in
 * another process, then bench/profile.ts's summary of the steady state (start-up and warm-up left out).
 * The bundle is this tree's, built unminified into a temporary directory so that each sample is
 * attributed to its source module and function (the shipped bundle is minified); `--sts-guard`
 * profiles another build instead, e.g. an older commit's `scripts/bundle.mjs --no-minify` output.
 *
 *   node --import tsx bench/profile-review.ts [--workload create-validate] [--reviews 20000] [--top 25]
 *                                             [--sts-guard <dir>/dist/bundle/server.mjs] [--keep]
 *                                             [--server fastify]   # the Fastify reference instead
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from '../scripts/bundle.mjs';
import type { LoadJob } from './load.js';
import { checked, LoadGenerator } from './load-generator.js';
import { type CpuProfile, summarise } from './profile.js';
import {
  CLIENT_CORE,
  ensureBuilt,
  pinProcess,
  prepareEnvironment,
  startServer,
  useStsGuardEntry,
} from './servers.js';
import { cpuWorkloads } from './workloads.js';

const option = (name: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const workloadId = option('workload') ?? 'create-validate';
const reviews = Number(option('reviews') ?? 20_000);
const top = Number(option('top') ?? 25);

const workload = cpuWorkloads().find((w) => w.id === workloadId);
if (!workload) {
  console.error(
    `unknown workload ${workloadId}: ${cpuWorkloads()
      .map((w) => w.id)
      .join(', ')}`,
  );
  process.exit(2);
}

await ensureBuilt((line) => console.error(line));
pinProcess(process.pid, CLIENT_CORE);
const env = await prepareEnvironment();
const profileDir = await mkdtemp(join(tmpdir(), 'sts-guard-profile-'));
if (option('sts-guard')) useStsGuardEntry(option('sts-guard')!);
else {
  await bundle({
    entryPoints: { server: 'src/server/main.ts' },
    external: ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'],
    outdir: join(profileDir, 'bundle'),
    minify: false,
  });
  useStsGuardEntry(join(profileDir, 'bundle/server.mjs'));
  if (option('server') === 'fastify') {
    // As servers.ts bundles it: with Fastify's schema compilers, which the reference loads.
    await bundle({
      entryPoints: { 'fastify-floor': 'bench/fastify-floor.mjs' },
      outdir: join(profileDir, 'floor'),
      minify: false,
    });
    useStsGuardEntry(join(profileDir, 'floor/fastify-floor.mjs'));
  }
}
const load = new LoadGenerator();
const run = async (job: Exclude<LoadJob, { kind: 'paced' }>) => checked(workload.label, await load.run(job));

try {
  const spawned = performance.now();
  const server = await startServer(
    'sts-guard',
    env,
    { serviceCache: 'on', nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] },
    { path: '/mutate', body: cpuWorkloads()[0]!.body },
  );
  // For whoever attaches strace or openssl s_client to the same server while it works.
  console.error(`server pid ${server.pid} at ${server.origin}`);
  const job = (amount: number): Exclude<LoadJob, { kind: 'paced' }> => ({
    kind: 'amount',
    origin: server.origin,
    requests: [{ path: workload.path, body: workload.body }],
    connections: 10,
    amount,
    status: workload.status,
  });
  await run(job(Math.ceil(reviews / 4))); // warm-up: JIT, connections, the Service cache
  const skipMs = performance.now() - spawned;
  await run(job(reviews));
  await server.stop();
  const file =
    readdirSync(profileDir).find((f) => f.endsWith(`.${server.pid}.0.001.cpuprofile`)) ??
    readdirSync(profileDir).find((f) => f.includes(`.${server.pid}.`));
  if (!file) throw new Error(`no profile written in ${profileDir}`);
  const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile;
  process.stdout.write(
    `${workload.label}: ${reviews.toLocaleString('en-US')} reviews, ${option('sts-guard') ?? 'this tree, unminified'}\n`,
  );
  process.stdout.write(summarise(profile, top, { skipMs }));
  if (process.argv.includes('--keep')) process.stdout.write(`profile: ${join(profileDir, file)}\n`);
} finally {
  load.close();
  await env.close();
  if (!process.argv.includes('--keep')) await rm(profileDir, { recursive: true, force: true });
}
