import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bundle } from '../scripts/bundle.mjs';
import { createDevelopmentCertificate } from '../src/server/tls.js';
import { LocalApiServer } from '../test/support/apiserver.js';
import { freePort } from '../test/support/processes.js';
import { ensureBuilt as ensureDistBuilt, repoRoot } from '../test/support/repo.js';
import {
  type CpuWorkload,
  headlessService,
  NAMESPACE,
  routingServices,
  storedStatefulSets,
} from './workloads.js';

export const REPO = repoRoot;
export const STS_GUARD_ENTRY = join(REPO, 'dist/bundle/server.mjs');
/**
 * The sts-guard bundle measured: this tree's, or another build's (`npm run bench -- --sts-guard
 * <dir>/dist/bundle/server.mjs`), e.g. an older commit built in a temporary directory for a
 * before/after comparison with the same harness.
 */
let stsGuardEntry = STS_GUARD_ENTRY;
export function useStsGuardEntry(path: string): void {
  if (!existsSync(path)) throw new Error(`--sts-guard: no such file ${path}`);
  stsGuardEntry = resolve(path);
}
export const stsGuardEntryInUse = () => stsGuardEntry;
/**
 * Another build of sts-guard measured beside this one in the CPU-per-review rounds (`npm run bench
 * -- --compare <dir>/dist/bundle/server.mjs`): both builds in the same rounds, so a before/after
 * ratio is paired like the others instead of spanning two runs of a shared machine.
 */
let compareEntry: string | undefined;
export function useCompareEntry(path: string): void {
  if (!existsSync(path)) throw new Error(`--compare: no such file ${path}`);
  compareEntry = resolve(path);
}
export const compareEntryInUse = () => compareEntry;
/**
 * The Node.js binary the compared build runs on (`--compare-node <path>`, default this one's): the
 * same build on two runtimes, paired in the same rounds (e.g. Node 24 against the machine's Node 20).
 */
let compareNode = process.execPath;
export function useCompareNode(path: string): void {
  if (!existsSync(path)) throw new Error(`--compare-node: no such file ${path}`);
  compareNode = resolve(path);
}
export const compareNodeInUse = () => compareNode;
export const BASELINE_ENTRY = join(REPO, 'bench/baseline-server.mjs');
/** bench/fastify-floor.mjs bundled like sts-guard (scripts/bundle.mjs), so both load the same way. */
export const FASTIFY_ENTRY = join(REPO, 'dist/bench/fastify-floor.mjs');

/** What every server in a run shares: one certificate, one local API server, one kubeconfig. */
export interface BenchEnvironment {
  dir: string;
  certFile: string;
  keyFile: string;
  /** The certificate's PEM, trusted by the clients here as the API server trusts the caBundle. */
  ca: string;
  kubeconfigFile: string;
  /** sts-guard's answers, which the baseline replays byte for byte (recordAnswers). */
  answersFile: string;
  api: LocalApiServer;
  close(): Promise<void>;
}

export async function prepareEnvironment(): Promise<BenchEnvironment> {
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-bench-'));
  const certificate = await createDevelopmentCertificate(dir);
  const api = await new LocalApiServer().start();
  api.put(headlessService());
  api.put({ ...headlessService(), metadata: { name: 'nginx', namespace: NAMESPACE } });
  for (const sts of storedStatefulSets()) api.putStatefulSet(sts);
  for (const service of routingServices()) api.put(service);
  const kubeconfigFile = await api.writeKubeconfig(join(dir, 'kubeconfig'));
  return {
    dir,
    certFile: certificate.certFile,
    keyFile: certificate.keyFile,
    ca: certificate.cert,
    kubeconfigFile,
    answersFile: join(dir, 'answers.json'),
    api,
    async close() {
      await api.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Builds dist/ when it is missing or older than any file under src/ (the bench runs the real
 * entry), and bundles the Fastify reference.
 */
export async function ensureBuilt(log: (line: string) => void): Promise<void> {
  await ensureDistBuilt(STS_GUARD_ENTRY, log);
  await bundle({
    entryPoints: { 'fastify-floor': 'bench/fastify-floor.mjs' },
    outdir: join(REPO, 'dist/bench'),
  });
}

/**
 * Core pinning (Linux taskset): the server under test gets core 1 to itself; the orchestrator,
 * the local API server and the load generator share core 0. Without taskset, the scheduler decides.
 */
const CAN_PIN = cpus().length >= 2 && existsSync('/usr/bin/taskset');
export const SERVER_CORE = 1;
export const CLIENT_CORE = 0;

/** The command line that runs `node args` on `core`, or unpinned when pinning is unavailable. */
export function onCore(core: number, args: string[], node = process.execPath): [string, string[]] {
  return CAN_PIN ? ['taskset', ['-c', String(core), node, ...args]] : [node, args];
}

/** Moves a running process, every thread of it, to `core`. */
export function pinProcess(pid: number, core: number): void {
  if (CAN_PIN) execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

export const pinning = () =>
  CAN_PIN
    ? `server on core ${SERVER_CORE}, everything else on core ${CLIENT_CORE}`
    : 'not pinned (no taskset)';

/** `fastify`: the reference bench/fastify-floor.mjs, the baseline's job done by Fastify. */
export type ServerKind = 'sts-guard' | 'baseline' | 'fastify' | 'compare';

export interface ServerOptions {
  /** SERVICE_CACHE for sts-guard: `on` in the Deployment, `off` in serverless mode. */
  serviceCache: 'on' | 'off';
  /** LOOKUP_TIMEOUT_MS; unset keeps the production default (1500 ms). */
  lookupTimeoutMs?: number;
  /** Extra node flags, e.g. `--cpu-prof` while profiling. */
  nodeFlags?: string[];
}

export interface ServerProcess {
  kind: ServerKind;
  child: ChildProcess;
  pid: number;
  origin: string;
  /** SIGTERM, then wait for exit (so a `--cpu-prof` profile gets written). */
  stop(): Promise<void>;
}

/**
 * Spawns a server process with a minimal environment (nothing of this process's NODE_OPTIONS or
 * loaders). sts-guard is the real compiled entry, `npm start` without the build step.
 */
export function spawnServer(kind: ServerKind, env: BenchEnvironment, port: number, options: ServerOptions) {
  const entry = {
    'sts-guard': stsGuardEntry,
    baseline: BASELINE_ENTRY,
    fastify: FASTIFY_ENTRY,
    compare: compareEntry ?? stsGuardEntry,
  }[kind];
  const node = kind === 'compare' ? compareNode : process.execPath;
  const [command, args] = onCore(SERVER_CORE, [...(options.nodeFlags ?? []), entry], node);
  const child = spawn(command, args, {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      HOST: '127.0.0.1',
      TLS_CERT_FILE: env.certFile,
      TLS_KEY_FILE: env.keyFile,
      KUBECONFIG: env.kubeconfigFile,
      ...(existsSync(env.answersFile) ? { BASELINE_ANSWERS_FILE: env.answersFile } : {}),
      SERVICE_CACHE: options.serviceCache,
      ...(options.lookupTimeoutMs ? { LOOKUP_TIMEOUT_MS: String(options.lookupTimeoutMs) } : {}),
      // Stopping is not measured: skip the 2 s drain a Pod needs behind a Service.
      SHUTDOWN_DRAIN_MS: '0',
      // Production's level: one JSON line per review. Logs go to /dev/null; their cost stays in.
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  return { child, stderr: () => stderr };
}

export interface Answer {
  statusCode: number;
  body: string;
}

/** One POST over a fresh TLS connection (no agent), trusting only the bench certificate. */
export function post(origin: string, path: string, body: string, ca: string): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const req = request(
      `${origin}${path}`,
      {
        method: 'POST',
        ca,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolveAnswer({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export const isAdmitted = (answer: Answer) =>
  answer.statusCode === 200 &&
  (JSON.parse(answer.body) as { response?: { allowed?: boolean } }).response?.allowed === true;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Retries the review until a server answers it (connection refused while the process boots),
 * and resolves when it is admitted. Retries every millisecond, so the figure is off by at most that.
 */
export async function firstAdmitted(
  origin: string,
  path: string,
  body: string,
  ca: string,
  deadline: number,
  exited: () => string | undefined,
): Promise<void> {
  for (;;) {
    try {
      const answer = await post(origin, path, body, ca);
      if (!isAdmitted(answer)) {
        throw new Error(`${origin}${path} did not admit the review: ${answer.statusCode} ${answer.body}`);
      }
      return;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') throw error;
    }
    const why = exited();
    if (why) throw new Error(why);
    if (performance.now() > deadline) throw new Error(`${origin} did not answer within the deadline`);
    await sleep(1);
  }
}

/** Starts a server and returns once it has admitted `probe`; throws with its stderr if it dies. */
export async function startServer(
  kind: ServerKind,
  env: BenchEnvironment,
  options: ServerOptions,
  probe: { path: string; body: string },
): Promise<ServerProcess> {
  const port = await freePort();
  const { child, stderr } = spawnServer(kind, env, port, options);
  const origin = `https://127.0.0.1:${port}`;
  let exitedWith: string | undefined;
  child.once('exit', (code, signal) => {
    exitedWith = `${kind} exited (${signal ?? code}) before it was stopped: ${stderr()}`;
  });
  try {
    await firstAdmitted(origin, probe.path, probe.body, env.ca, performance.now() + 15_000, () => exitedWith);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    kind,
    child,
    pid: child.pid!,
    origin,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exit = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * Sends each review to sts-guard's /mutate and /validate, checks each is admitted, and records
 * the exact answers for the baseline to replay, so both servers send the same bytes.
 */
export async function recordAnswers(
  env: BenchEnvironment,
  origin: string,
  reviews: Array<{ label: string; body: string; patched: boolean }>,
  cpu: CpuWorkload[] = [],
): Promise<void> {
  const answers: Record<string, string> = {};
  // The CPU-per-review workloads: admitted (200), or the malformed body's 400, which the baseline
  // and the Fastify reference replay under "<path> malformed" when the body does not parse.
  for (const w of cpu) {
    const answer = await post(origin, w.path, w.body, env.ca);
    if (w.status === 400) {
      if (answer.statusCode !== 400)
        throw new Error(`sts-guard answered ${w.label} with ${answer.statusCode}`);
      answers[`${w.path} malformed`] = answer.body;
      continue;
    }
    if (!isAdmitted(answer)) throw new Error(`sts-guard did not admit ${w.label}: ${answer.body}`);
    const uid = (JSON.parse(w.body) as { request: { uid: string } }).request.uid;
    answers[`${w.path} ${uid}`] = answer.body;
  }
  for (const review of reviews) {
    const uid = (JSON.parse(review.body) as { request: { uid: string } }).request.uid;
    for (const path of ['/mutate', '/validate'] as const) {
      const answer = await post(origin, path, review.body, env.ca);
      if (!isAdmitted(answer))
        throw new Error(`sts-guard ${path} did not admit ${review.label}: ${answer.body}`);
      const patched =
        (JSON.parse(answer.body) as { response: { patch?: string } }).response.patch !== undefined;
      if (path === '/mutate' && patched !== review.patched) {
        throw new Error(`sts-guard /mutate ${patched ? 'patched' : 'did not patch'} ${review.label}`);
      }
      answers[`${path} ${uid}`] = answer.body;
    }
  }
  await writeFile(env.answersFile, JSON.stringify(answers));
}

/** Resident set size of a process, from /proc (Linux), in bytes. */
export function rssBytes(pid: number): number {
  const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node ships for

/** CPU time (user + system) a process has used so far, from /proc/<pid>/stat, in seconds. */
export function statCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU time (user + system) a process has used so far, in seconds: the scheduler's exact run time
 * of each of its threads (`/proc/<pid>/task/<tid>/schedstat`, nanoseconds), summed. utime and
 * stime in /proc/<pid>/stat are the same time counted in 10 ms ticks charged to whichever task
 * runs when a tick fires: on a core shared with other processes that sampling alone spreads a
 * 5,000-review figure by ±10 % or more. Falls back to /proc/<pid>/stat without schedstat.
 * (Threads that exit between two readings drop out; Node's threads live as long as the process.)
 */
export function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    }
    if (Number.isFinite(ns) && ns > 0) return ns / 1e9;
  } catch {
    // no schedstat (CONFIG_SCHED_INFO off): ticks it is
  }
  return statCpuSeconds(pid);
}

/** Runs `work` and returns its result with the share of one core `server` used meanwhile. */
export async function withCpu<T>(
  server: ServerProcess,
  work: () => Promise<T>,
): Promise<{ result: T; cpu: number; cpuSeconds: number }> {
  const cpuBefore = cpuSeconds(server.pid);
  const started = performance.now();
  const result = await work();
  const used = cpuSeconds(server.pid) - cpuBefore;
  return { result, cpu: used / ((performance.now() - started) / 1000), cpuSeconds: used };
}
