/**
 * `npm run bench`: sts-guard against a bare node:https baseline, measured in the same run.
 * `npm run bench:smoke`: every part for a second or so; exits 0 when the scripts work.
 * `--cpu-prof`: the long-lived servers write V8 CPU profiles (path printed at the end).
 *
 * Processes: this orchestrator (and the local Kubernetes API server), one load generator
 * (load.ts) and one server process under test at a time doing work, so on 2 cores the server
 * and the load generator each have a core.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/support/processes.js';
import type { LatencyResult, LoadJob, LoadReply, LoadRequest, SaturationResult } from './load.js';
import type { LookupJob, LookupResult } from './lookup.js';
import {
  type BenchEnvironment,
  CLIENT_CORE,
  compareEntryInUse,
  cpuSeconds,
  ensureBuilt,
  firstAdmitted,
  onCore,
  pinning,
  pinProcess,
  post,
  prepareEnvironment,
  REPO,
  recordAnswers,
  rssBytes,
  SERVER_CORE,
  type ServerKind,
  type ServerOptions,
  type ServerProcess,
  STS_GUARD_ENTRY,
  spawnServer,
  startServer,
  stsGuardEntryInUse,
  useCompareEntry,
  useStsGuardEntry,
} from './servers.js';
import { median } from './stats.js';
import { type CpuRow, pairedRatio, type Row, renderCpuTable, renderTable } from './table.js';
import { type CpuWorkload, cpuWorkloads, NAMESPACE, type Workload, workloads } from './workloads.js';

const smoke = process.argv.includes('--smoke');
const profile = process.argv.includes('--cpu-prof');
const stsGuardFlag = process.argv.indexOf('--sts-guard');
if (stsGuardFlag > 0) useStsGuardEntry(process.argv[stsGuardFlag + 1] ?? '');
const compareFlag = process.argv.indexOf('--compare');
if (compareFlag > 0) useCompareEntry(process.argv[compareFlag + 1] ?? '');

/** How long and how much each part runs; the smoke plan only proves the scripts work. */
const plan = smoke
  ? {
      connections: 10,
      warmupSec: 0.3,
      saturateSec: 0.3,
      ratePerSec: 1000,
      pacedSec: 0.3,
      rssReviews: 1000,
      rssSamples: 2,
      coldStarts: 1,
      cachedLookups: 1000,
      liveLookups: 30,
      cpuRounds: 1,
      cpuReviews: 200,
    }
  : {
      connections: 10,
      warmupSec: 3,
      saturateSec: 5,
      ratePerSec: 1000,
      pacedSec: 10,
      rssReviews: 100_000,
      rssSamples: 10,
      coldStarts: 10,
      cachedLookups: 100_000,
      liveLookups: 2000,
      cpuRounds: 5,
      cpuReviews: 5000,
    };

const TARGETS = {
  throughputRatio: 0.8,
  p99Ms: 2,
  coldStartRatio: 1.5,
  rssRatio: 1.5,
  rssGrowth: 0.1,
  /** MongoDB CREATE /validate: sts-guard's CPU per review ÷ Fastify alone's. */
  cpuVsFastify: 1.3,
};

const runStarted = performance.now();
const log = (line: string) =>
  process.stderr.write(
    `bench: ${((performance.now() - runStarted) / 1000).toFixed(1).padStart(5)} s  ${line}\n`,
  );
/**
 * The Deployment's settings: the Service cache on (the baseline ignores them). The smoke run
 * allows slow look-ups, as a busy CI machine can take over 1.5 s to load the Kubernetes client.
 */
const SERVER_OPTIONS: ServerOptions = { serviceCache: 'on', ...(smoke ? { lookupTimeoutMs: 10_000 } : {}) };
const COLD_START_OPTIONS: ServerOptions = { ...SERVER_OPTIONS, serviceCache: 'off' };
const PROFILE_DIR = join(tmpdir(), 'sts-guard-bench-profiles');

/** The load generator process, with a promise per job. */
class LoadGenerator {
  private child: ChildProcess;
  private nextId = 0;
  private pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();

  constructor() {
    this.child = fork(join(REPO, 'bench/load.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    pinProcess(this.child.pid!, CLIENT_CORE);
    this.child.on('message', (reply: LoadReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if ('error' in reply) waiter?.reject(new Error(`load generator: ${reply.error}`));
      else waiter?.resolve(reply.result as never);
    });
    this.child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`load generator exited (${code})`));
      this.pending.clear();
    });
  }

  run(job: Extract<LoadJob, { kind: 'paced' }>): Promise<LatencyResult>;
  run(job: Exclude<LoadJob, { kind: 'paced' }>): Promise<SaturationResult>;
  run(job: LoadJob): Promise<LatencyResult | SaturationResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: never) => void, reject });
      this.child.send({ id, job });
    });
  }

  close() {
    this.child.disconnect();
  }
}

/** Fails the run when any review in a load run went wrong: a figure over failures means nothing. */
function checked<T extends { failures: number }>(what: string, result: T): T {
  if (result.failures > 0)
    throw new Error(`${what}: ${result.failures} reviews failed (non-2xx, error or timeout)`);
  return result;
}

const on = (path: '/mutate' | '/validate', list: Workload[]): LoadRequest[] =>
  list.map((w) => ({ path, body: w.body }));

/** Checks the baseline replays sts-guard's answers byte for byte before timing anything. */
async function checkBaseline(
  env: BenchEnvironment,
  baseline: ServerProcess,
  list: Workload[],
  cpu: CpuWorkload[],
) {
  const answers = JSON.parse(readFileSync(env.answersFile, 'utf8')) as Record<string, string>;
  for (const w of list) {
    const uid = (JSON.parse(w.body) as { request: { uid: string } }).request.uid;
    for (const path of ['/mutate', '/validate'] as const) {
      const answer = await post(baseline.origin, path, w.body, env.ca);
      if (answer.body !== answers[`${path} ${uid}`])
        throw new Error(`${baseline.kind} ${path} did not replay ${w.label}`);
    }
  }
  for (const w of cpu) {
    const answer = await post(baseline.origin, w.path, w.body, env.ca);
    const key =
      w.status === 400
        ? `${w.path} malformed`
        : `${w.path} ${(JSON.parse(w.body) as { request: { uid: string } }).request.uid}`;
    if (answer.statusCode !== w.status || answer.body !== answers[key])
      throw new Error(`${baseline.kind} did not replay ${w.label}: ${answer.statusCode} ${answer.body}`);
  }
}

interface ThroughputFigure {
  path: string;
  workload: Workload;
  stsGuard: SaturationResult;
  baseline: SaturationResult;
  /** Share of one core the server used during the run. */
  stsGuardCpu: number;
  baselineCpu: number;
}

/** Fastify alone (bench/fastify-floor.mjs) against the baseline: what the framework costs. */
interface ReferenceFigure {
  workload: Workload;
  reviewsPerSec: number;
  baselineReviewsPerSec: number;
}

/** Runs `work` and returns its result with the share of one core `server` used meanwhile. */
async function withCpu<T>(
  server: ServerProcess,
  work: () => Promise<T>,
): Promise<{ result: T; cpu: number; cpuSeconds: number }> {
  const cpuBefore = cpuSeconds(server.pid);
  const started = performance.now();
  const result = await work();
  const used = cpuSeconds(server.pid) - cpuBefore;
  return { result, cpu: used / ((performance.now() - started) / 1000), cpuSeconds: used };
}

/**
 * CPU per review: for each workload and server, a fixed number of reviews as fast as the server
 * answers them, and the server process's user + system CPU time over them ÷ reviews answered.
 * Rounds are interleaved (every workload on every server, then again) and the server order
 * rotates, so the machine's drift lands on all three alike; one discarded round warms up first.
 */
async function cpuPerReview(
  load: LoadGenerator,
  cpu: CpuWorkload[],
  servers: Record<'sts-guard' | 'fastify' | 'baseline', ServerProcess> & { compare?: ServerProcess },
): Promise<CpuRow<CpuWorkload>[]> {
  const order = servers.compare
    ? (['sts-guard', 'fastify', 'baseline', 'compare'] as const)
    : (['sts-guard', 'fastify', 'baseline'] as const);
  const rows: CpuRow<CpuWorkload>[] = cpu.map((workload) => ({
    workload,
    rounds: { 'sts-guard': [], fastify: [], baseline: [], ...(servers.compare ? { compare: [] } : {}) },
  }));
  for (let round = smoke ? 0 : -1; round < plan.cpuRounds; round++) {
    log(
      round < 0 ? 'CPU per review: warm-up round' : `CPU per review: round ${round + 1} of ${plan.cpuRounds}`,
    );
    for (const row of rows) {
      const w = row.workload;
      for (let i = 0; i < order.length; i++) {
        const kind = order[(i + Math.max(0, round)) % order.length]!;
        const server = servers[kind]!;
        const amount = Math.ceil(plan.cpuReviews * (w.share ?? 1) * (round < 0 ? 0.2 : 1));
        const run = await withCpu(server, () =>
          load.run({
            kind: 'amount',
            origin: server.origin,
            requests: [{ path: w.path, body: w.body }],
            connections: plan.connections,
            amount,
            status: w.status,
          }),
        );
        checked(`CPU per review, ${kind} ${w.label}`, run.result);
        if (round >= 0) row.rounds[kind]!.push((run.cpuSeconds / run.result.completed) * 1e6);
      }
    }
  }
  return rows;
}

async function throughputAndLatency(
  env: BenchEnvironment,
  load: LoadGenerator,
  list: Workload[],
  cpu: CpuWorkload[],
) {
  const serverOptions = (options: ServerOptions): ServerOptions =>
    profile ? { ...options, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] } : options;
  const probe = { path: '/mutate', body: list[0]!.body };
  const stsGuard = await startServer('sts-guard', env, serverOptions(SERVER_OPTIONS), probe);
  let baseline: ServerProcess | undefined;
  let fastify: ServerProcess | undefined;
  let compare: ServerProcess | undefined;
  try {
    await recordAnswers(
      env,
      stsGuard.origin,
      list.map((w) => ({ ...w, patched: w.id === 'create' })),
      cpu,
    );
    baseline = await startServer('baseline', env, serverOptions(SERVER_OPTIONS), probe);
    await checkBaseline(env, baseline, list, cpu);
    fastify = await startServer('fastify', env, SERVER_OPTIONS, probe);
    await checkBaseline(env, fastify, list, cpu);
    if (compareEntryInUse()) {
      // The other build must give the same answers, byte for byte, before its CPU is compared.
      compare = await startServer('compare', env, SERVER_OPTIONS, probe);
      await checkBaseline(env, compare, list, cpu);
    }
    log(`warming up the servers (${plan.warmupSec} s each)`);
    const mix = [...on('/mutate', list), ...on('/validate', list)];
    // The compared build too: it must be as warm as this one when the CPU rounds start.
    for (const server of [stsGuard, baseline, fastify, ...(compare ? [compare] : [])]) {
      await load.run({
        kind: 'saturate',
        origin: server.origin,
        requests: mix,
        connections: plan.connections,
        durationSec: plan.warmupSec,
      });
    }
    // Live look-ups the stand-in API server answered, by kind: Services should come from the
    // watch cache; each MongoDB CREATE's /mutate lists the namespace's claims (initiation window).
    const liveCount = (kind: string) =>
      env.api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/') && r.includes(`/${kind}`))
        .length;
    const liveGetsBefore = liveCount('services');
    const claimListsBefore = liveCount('persistentvolumeclaims');

    // Interleaved (baseline, then sts-guard, per body) so drift in the machine hits both alike.
    const throughput: ThroughputFigure[] = [];
    const reference: ReferenceFigure[] = [];
    for (const w of list) {
      log(`saturation: ${w.label}`);
      const saturate = (server: ServerProcess, path: '/mutate' | '/validate') =>
        withCpu(server, () =>
          load.run({
            kind: 'saturate',
            origin: server.origin,
            requests: on(path, [w]),
            connections: plan.connections,
            durationSec: plan.saturateSec,
          }),
        );
      const base = await saturate(baseline, '/validate');
      checked(`baseline ${w.label}`, base.result);
      const framework = await saturate(fastify, '/validate');
      checked(`Fastify alone ${w.label}`, framework.result);
      reference.push({
        workload: w,
        reviewsPerSec: framework.result.reviewsPerSec,
        baselineReviewsPerSec: base.result.reviewsPerSec,
      });
      for (const path of ['/mutate', '/validate'] as const) {
        const run = await saturate(stsGuard, path);
        checked(`sts-guard ${path} ${w.label}`, run.result);
        throughput.push({
          path,
          workload: w,
          stsGuard: run.result,
          baseline: base.result,
          stsGuardCpu: run.cpu,
          baselineCpu: base.cpu,
        });
      }
    }

    const latency: Record<'baseline' | '/mutate' | '/validate', LatencyResult> = {} as never;
    for (const [name, server, path] of [
      ['baseline', baseline, '/validate'],
      ['/mutate', stsGuard, '/mutate'],
      ['/validate', stsGuard, '/validate'],
    ] as const) {
      log(`latency at ${plan.ratePerSec} reviews/s: ${name}`);
      latency[name] = checked(
        `latency ${name}`,
        await load.run({
          kind: 'paced',
          origin: server.origin,
          ca: env.ca,
          requests: on(path, list),
          ratePerSec: plan.ratePerSec,
          durationSec: plan.pacedSec,
        }),
      );
    }
    const liveGets = liveCount('services') - liveGetsBefore;
    const claimLists = liveCount('persistentvolumeclaims') - claimListsBefore;
    const cpuRows = await cpuPerReview(load, cpu, {
      'sts-guard': stsGuard,
      fastify,
      baseline,
      ...(compare ? { compare } : {}),
    });
    return {
      throughput,
      reference,
      latency,
      cpuRows,
      liveGets,
      claimLists,
      pids: { stsGuard: stsGuard.pid, baseline: baseline.pid },
    };
  } finally {
    await stsGuard.stop();
    await baseline?.stop();
    await fastify?.stop();
    await compare?.stop();
  }
}

interface RssFigure {
  /** [reviews answered so far, RSS bytes]; the first sample is after the first review. */
  samples: Array<[number, number]>;
}

/** A fresh process per server, RSS read from /proc every rssReviews/rssSamples reviews. */
async function rss(
  kind: ServerKind,
  env: BenchEnvironment,
  load: LoadGenerator,
  list: Workload[],
): Promise<RssFigure> {
  log(`RSS over ${plan.rssReviews} reviews: ${kind}`);
  const server = await startServer(kind, env, SERVER_OPTIONS, { path: '/mutate', body: list[0]!.body });
  try {
    // Each StatefulSet write goes to both webhooks: alternate them over the three bodies.
    const requests = list.flatMap((w) => [
      { path: '/mutate', body: w.body },
      { path: '/validate', body: w.body },
    ]);
    const samples: Array<[number, number]> = [[1, rssBytes(server.pid)]];
    const chunk = Math.round(plan.rssReviews / plan.rssSamples);
    for (let done = 0; done < plan.rssReviews; done += chunk) {
      checked(
        `RSS ${kind}`,
        await load.run({
          kind: 'amount',
          origin: server.origin,
          requests,
          connections: plan.connections,
          amount: chunk,
        }),
      );
      samples.push([done + chunk, rssBytes(server.pid)]);
    }
    return { samples };
  } finally {
    await server.stop();
  }
}

/** Spawn → first admitted review over a fresh TLS connection, in milliseconds. */
async function coldStart(
  kind: ServerKind,
  env: BenchEnvironment,
  path: string,
  body: string,
): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const { child, stderr } = spawnServer(kind, env, port, COLD_START_OPTIONS);
  let exitedWith: string | undefined;
  child.once('exit', (code, signal) => {
    exitedWith = `${kind} exited (${signal ?? code}): ${stderr()}`;
  });
  try {
    await firstAdmitted(`https://127.0.0.1:${port}`, path, body, env.ca, started + 15_000, () => exitedWith);
    return performance.now() - started;
  } finally {
    const exit = once(child, 'exit');
    child.kill('SIGKILL');
    await exit;
  }
}

/** A Lambda cold start: spawn → the handler's first admitted answer (lambda-cold.mjs). */
async function lambdaColdStart(
  env: BenchEnvironment,
  handlerModule: string,
  path: string,
  reviewFile: string,
) {
  const [command, args] = onCore(SERVER_CORE, [
    join(REPO, 'bench/lambda-cold.mjs'),
    handlerModule,
    path,
    reviewFile,
  ]);
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: env.kubeconfigFile,
      LOG_LEVEL: 'info',
      ...(COLD_START_OPTIONS.lookupTimeoutMs
        ? { LOOKUP_TIMEOUT_MS: String(COLD_START_OPTIONS.lookupTimeoutMs) }
        : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const admittedAt = new Promise<number>((resolve) => {
    child.stdout.on('data', (c: string) => {
      stdout += c;
      if (stdout.includes('admitted\n')) resolve(performance.now() - started);
    });
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0 || !stdout.includes('admitted\n'))
    throw new Error(`lambda cold start failed (${code}): ${stderr.slice(-2000)}`);
  return admittedAt;
}

interface ColdStartFigures {
  baseline: number[];
  /** The reference: Fastify alone (bench/fastify-floor.mjs). */
  fastify: number[];
  mutate: number[];
  validate: number[];
  lambda?: { module: string; baseline: number[]; mutate: number[]; validate: number[] };
}

/**
 * The Lambda handler as deployed: the esbuild bundle deploy/serverless/build-lambda.mjs makes,
 * built afresh into the run's directory; else the unbundled dist/ module; else none.
 */
async function lambdaHandlerModule(env: BenchEnvironment): Promise<string | undefined> {
  const builder = join(REPO, 'deploy/serverless/build-lambda.mjs');
  if (existsSync(builder)) {
    const outdir = join(env.dir, 'lambda');
    const build = spawn(process.execPath, [builder, '--outdir', outdir], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const [code] = (await once(build, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`${builder} failed (${code})`);
    return join(outdir, 'index.mjs');
  }
  const unbundled = join(REPO, 'dist/serverless/lambda.js');
  return existsSync(unbundled) ? unbundled : undefined;
}

async function coldStarts(env: BenchEnvironment, list: Workload[]): Promise<ColdStartFigures> {
  log(`cold start x${plan.coldStarts}`);
  const create = list.find((w) => w.id === 'create')!;
  const figures: ColdStartFigures = { baseline: [], fastify: [], mutate: [], validate: [] };
  for (let i = 0; i < plan.coldStarts; i++) {
    figures.baseline.push(await coldStart('baseline', env, '/validate', create.body));
    figures.fastify.push(await coldStart('fastify', env, '/validate', create.body));
    figures.mutate.push(await coldStart('sts-guard', env, '/mutate', create.body));
    figures.validate.push(await coldStart('sts-guard', env, '/validate', create.body));
  }
  const lambda = await lambdaHandlerModule(env);
  if (lambda) {
    const reviewFile = join(env.dir, 'create-review.json');
    await writeFile(reviewFile, create.body);
    const baselineModule = join(REPO, 'bench/baseline-lambda.mjs');
    figures.lambda = { module: lambda, baseline: [], mutate: [], validate: [] };
    for (let i = 0; i < plan.coldStarts; i++) {
      figures.lambda.baseline.push(await lambdaColdStart(env, baselineModule, '/mutate', reviewFile));
      figures.lambda.mutate.push(await lambdaColdStart(env, lambda, '/mutate', reviewFile));
      figures.lambda.validate.push(await lambdaColdStart(env, lambda, '/validate', reviewFile));
    }
  }
  return figures;
}

async function lookups(env: BenchEnvironment): Promise<LookupResult> {
  log('Service look-up: warm cache vs live GET');
  // The client side on the server core; the local API server answers from this process's core.
  const child = fork(join(REPO, 'bench/lookup.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  pinProcess(child.pid!, SERVER_CORE);
  const job: LookupJob = {
    apiServerUrl: env.api.url,
    namespace: NAMESPACE,
    name: 'mongodb-headless',
    cachedLookups: plan.cachedLookups,
    liveLookups: plan.liveLookups,
  };
  child.send(job);
  const [message] = (await once(child, 'message')) as [{ result: LookupResult } | { error: string }];
  if ('error' in message) throw new Error(`look-up benchmark: ${message.error}`);
  return message.result;
}

const ms = (value: number) => `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const perSec = (value: number) => `${Math.round(value).toLocaleString('en-US')}/s`;
const us = (value: number) => (value < 10 ? `${value.toFixed(2)} µs` : `${Math.round(value)} µs`);
const percent = (value: number) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`;

function machine(): string {
  const model =
    readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? cpus()[0]?.model;
  return `${cpus().length} × ${model ?? 'unknown CPU'} · node ${process.version}`;
}

/** The 1-minute load average: another process busy on a 2-core machine skews every figure. */
const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

async function main() {
  const loadBefore = loadAverage();
  await ensureBuilt(log);
  pinProcess(process.pid, CLIENT_CORE);
  const env = await prepareEnvironment();
  if (profile) await mkdir(PROFILE_DIR, { recursive: true });
  const load = new LoadGenerator();
  const list = workloads();
  const cpu = cpuWorkloads(list);
  try {
    const { throughput, reference, latency, cpuRows, liveGets, claimLists, pids } =
      await throughputAndLatency(env, load, list, cpu);
    const rssStsGuard = await rss('sts-guard', env, load, list);
    const rssBaseline = await rss('baseline', env, load, list);
    const cold = await coldStarts(env, list);
    const lookup = await lookups(env);

    const rows: Row[] = [];
    rows.push({
      section: `Throughput at saturation, reviews/s (${plan.connections} keep-alive TLS connections, one server process)`,
    });
    for (const f of throughput) {
      rows.push({
        figure: `${f.path.padEnd(9)} ${f.workload.label}`,
        stsGuard: perSec(f.stsGuard.reviewsPerSec),
        baseline: perSec(f.baseline.reviewsPerSec),
        ratio: f.stsGuard.reviewsPerSec / f.baseline.reviewsPerSec,
        target: `≥ ${TARGETS.throughputRatio.toFixed(2)}×`,
        pass: f.stsGuard.reviewsPerSec / f.baseline.reviewsPerSec >= TARGETS.throughputRatio,
      });
    }
    const floor = cpuRows.find((r) => r.workload.id === 'create-validate')!;
    rows.push({
      section: `Server CPU per review, median of ${plan.cpuRounds} rounds (table below) | Fastify alone; ratio: median of the rounds' ratios`,
    });
    rows.push({
      figure: floor.workload.label,
      stsGuard: us(median(floor.rounds['sts-guard'])),
      baseline: us(median(floor.rounds.fastify)),
      ratio: pairedRatio(floor, 'fastify'),
      target: `≤ ${TARGETS.cpuVsFastify.toFixed(2)}×`,
      pass: pairedRatio(floor, 'fastify') <= TARGETS.cpuVsFastify,
    });
    rows.push({
      section:
        'Reference, no target: Fastify alone (bench/fastify-floor.mjs: parse, same fixed answer) | baseline',
    });
    for (const f of reference) {
      rows.push({
        figure: `reviews/s  ${f.workload.label}`,
        stsGuard: perSec(f.reviewsPerSec),
        baseline: perSec(f.baselineReviewsPerSec),
        ratio: f.reviewsPerSec / f.baselineReviewsPerSec,
      });
    }
    rows.push({
      section: `Latency at ${plan.ratePerSec.toLocaleString('en-US')} reviews/s, open loop, the three bodies in turn`,
    });
    for (const path of ['/mutate', '/validate'] as const) {
      const s = latency[path];
      const b = latency.baseline;
      rows.push({
        figure: `${path.padEnd(9)} p50`,
        stsGuard: ms(s.p50),
        baseline: ms(b.p50),
        ratio: s.p50 / b.p50,
      });
      rows.push({
        figure: `${path.padEnd(9)} p99`,
        stsGuard: ms(s.p99),
        baseline: ms(b.p99),
        ratio: s.p99 / b.p99,
        target: `≤ ${TARGETS.p99Ms} ms`,
        pass: s.p99 <= TARGETS.p99Ms,
      });
      rows.push({
        figure: `${path.padEnd(9)} max`,
        stsGuard: ms(s.max),
        baseline: ms(b.max),
        ratio: s.max / b.max,
      });
    }
    const last = (f: RssFigure) => f.samples.at(-1)!;
    const growth = (f: RssFigure) => {
      const mid = f.samples[Math.floor(f.samples.length / 2)]![1];
      return (last(f)[1] - mid) / mid;
    };
    rows.push({ section: `Memory: RSS of a fresh server process, /mutate and /validate in turn` });
    rows.push({
      figure: `RSS after ${last(rssStsGuard)[0].toLocaleString('en-US')} reviews`,
      stsGuard: mb(last(rssStsGuard)[1]),
      baseline: mb(last(rssBaseline)[1]),
      ratio: last(rssStsGuard)[1] / last(rssBaseline)[1],
      target: `≤ ${TARGETS.rssRatio.toFixed(2)}×`,
      pass: last(rssStsGuard)[1] / last(rssBaseline)[1] <= TARGETS.rssRatio,
    });
    rows.push({
      figure: 'RSS growth over the second half',
      stsGuard: percent(growth(rssStsGuard)),
      baseline: percent(growth(rssBaseline)),
      target: `≤ ${percent(TARGETS.rssGrowth)}`,
      pass: growth(rssStsGuard) <= TARGETS.rssGrowth,
    });
    rows.push({
      section: `Cold start: process spawn → first admitted review over TLS, median of ${plan.coldStarts}`,
    });
    /** A cold-start row: the median of `values` against the median of `baseline`, judged. */
    const coldRow = (figure: string, values: number[], baseline: number[]): Row => ({
      figure,
      stsGuard: ms(median(values)),
      baseline: ms(median(baseline)),
      ratio: median(values) / median(baseline),
      target: `≤ ${TARGETS.coldStartRatio.toFixed(2)}×`,
      pass: median(values) / median(baseline) <= TARGETS.coldStartRatio,
    });
    const baselineCold = median(cold.baseline);
    rows.push(coldRow('first /mutate (no look-up)', cold.mutate, cold.baseline));
    rows.push(coldRow('first /validate (live look-up)', cold.validate, cold.baseline));
    rows.push({
      figure: 'reference, no target: Fastify alone',
      stsGuard: ms(median(cold.fastify)),
      baseline: ms(baselineCold),
      ratio: median(cold.fastify) / baselineCold,
    });
    if (cold.lambda) {
      const bundled = cold.lambda.module.endsWith('.mjs') ? 'bundle' : 'dist/, unbundled';
      rows.push(coldRow(`Lambda (${bundled}): first /mutate`, cold.lambda.mutate, cold.lambda.baseline));
      rows.push(coldRow(`Lambda (${bundled}): first /validate`, cold.lambda.validate, cold.lambda.baseline));
    } else {
      rows.push({
        figure: 'Lambda handler',
        stsGuard: 'skipped',
        baseline: '',
        note: 'no src/serverless/lambda.ts',
      });
    }
    rows.push({
      section: 'Service look-up, in process (client-node → local API server): warm cache | live GET',
    });
    for (const stat of ['p50', 'p99', 'mean'] as const) {
      rows.push({
        figure: `look-up ${stat}`,
        stsGuard: us(lookup.cached[stat]),
        baseline: us(lookup.live[stat]),
        ratio: lookup.cached[stat] / lookup.live[stat],
      });
    }

    const minCpu = (key: 'stsGuardCpu' | 'baselineCpu') => Math.min(...throughput.map((f) => f[key]));
    const notes = [
      `workloads: ${list.map((w) => w.label).join(', ')}; responses checked before timing`,
      `server CPU during saturation runs: sts-guard ≥ ${(minCpu('stsGuardCpu') * 100).toFixed(0)}%, baseline ≥ ${(minCpu('baselineCpu') * 100).toFixed(0)}% of a core` +
        (minCpu('baselineCpu') < 0.9
          ? ' (baseline below 90%: the load generator, not the baseline, was the limit)'
          : ''),
      `cores: ${pinning()}`,
      `Service look-ups that went live during the throughput and latency runs: ${liveGets} (cache on); PersistentVolumeClaim LISTs (one per MongoDB CREATE's /mutate): ${claimLists}`,
      `latency achieved rate: ${(['baseline', '/mutate', '/validate'] as const).map((k) => `${k} ${Math.round(latency[k].achievedRate)}/s`).join(', ')}`,
      `RSS every ${Math.round(plan.rssReviews / plan.rssSamples).toLocaleString('en-US')} reviews (MB): sts-guard ${rssStsGuard.samples.map(([, b]) => (b / 1048576).toFixed(0)).join(' ')}; baseline ${rssBaseline.samples.map(([, b]) => (b / 1048576).toFixed(0)).join(' ')}`,
      `cold starts (ms): baseline ${cold.baseline.map((v) => v.toFixed(0)).join(' ')}; Fastify alone ${cold.fastify.map((v) => v.toFixed(0)).join(' ')}; /mutate ${cold.mutate.map((v) => v.toFixed(0)).join(' ')}; /validate ${cold.validate.map((v) => v.toFixed(0)).join(' ')}`,
    ];
    if (cold.lambda) {
      notes.push(
        `Lambda cold starts (ms): baseline ${cold.lambda.baseline.map((v) => v.toFixed(0)).join(' ')}; /mutate ${cold.lambda.mutate.map((v) => v.toFixed(0)).join(' ')}; /validate ${cold.lambda.validate.map((v) => v.toFixed(0)).join(' ')}`,
      );
    }
    const loadAfter = loadAverage();
    if (Math.max(loadBefore, loadAfter) > 0.5) {
      notes.push(
        `1-min load average was ${loadBefore.toFixed(2)} before the run (${loadAfter.toFixed(2)} after): other processes shared the cores, so the figures are noisy`,
      );
    }
    if (stsGuardEntryInUse() !== STS_GUARD_ENTRY) notes.push(`sts-guard measured: ${stsGuardEntryInUse()}`);
    if (compareEntryInUse()) notes.push(`compared build (CPU table only): ${compareEntryInUse()}`);
    if (profile) {
      notes.push(
        `CPU profiles: ${PROFILE_DIR}/CPU.*.<pid>.*.cpuprofile, sts-guard pid ${pids.stsGuard}, baseline pid ${pids.baseline}; summarise with bench/profile.ts`,
      );
    }
    log('done');
    process.stdout.write(
      renderTable({
        title: `sts-guard benchmark (${smoke ? 'smoke: scripts only, no targets' : 'full run'}) · ${machine()}`,
        rows,
        notes,
        judge: !smoke,
      }),
    );
    process.stdout.write(
      `\n${renderCpuTable({
        title: `Server CPU per review, µs: user + system CPU of the server process (each thread's run time, /proc/<pid>/task/*/schedstat) over ${plan.cpuReviews.toLocaleString('en-US')} reviews ÷ reviews answered; median of ${plan.cpuRounds} interleaved rounds [min–max]; ratios: median of the rounds' ratios`,
        rows: cpuRows,
        notes: [
          `load from a separate process (autocannon, ${plan.connections} keep-alive TLS connections), so its CPU is not counted; the server on a core of its own when pinned`,
          `${cpu
            .filter((w) => w.live)
            .map((w) => `${w.label.replace(/^\/\S+\s+/, '')}: sts-guard's live ${w.live}`)
            .join(
              '; ',
            )} to the local API server stand-in is in its figure (client-node in the server process); the other two servers make none`,
          ...cpu
            .filter((w) => w.share !== undefined)
            .map(
              (w) =>
                `${w.label}: ${Math.ceil(plan.cpuReviews * w.share!).toLocaleString('en-US')} reviews per round${w.status === 400 ? '; Fastify (so sts-guard and Fastify alone) closes the connection after a body it cannot parse, so each of their reviews includes a TLS handshake, the bare server keeps the connection' : ''}`,
            ),
        ],
      })}`,
    );
  } finally {
    load.close();
    await env.close();
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
