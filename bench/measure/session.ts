/**
 * The long-lived servers the saturation, latency and CPU-per-review measurements share: sts-guard
 * (its answers recorded for the others to replay), the bare baseline, Fastify alone and, with
 * `--compare`, another build; the references checked to answer every workload with the same
 * bytes, the other build to reach the same verdicts (bench/compare.ts), then all warmed up.
 */
import { readFileSync } from 'node:fs';
import { checkCompared } from '../compare.js';
import { type LoadGenerator, on } from '../load-generator.js';
import { log, PROFILE_DIR, plan, profile, SERVER_OPTIONS } from '../plan.js';
import {
  type BenchEnvironment,
  compareEntryInUse,
  post,
  recordAnswers,
  type ServerOptions,
  type ServerProcess,
  startServer,
} from '../servers.js';
import type { CpuWorkload, Workload } from '../workloads.js';

export interface Session {
  stsGuard: ServerProcess;
  baseline: ServerProcess;
  fastify: ServerProcess;
  compare?: ServerProcess;
  /** Which of the compared build's answers differ in bytes from this build's (same verdicts). */
  compareDiffers: string[];
  /** Live look-ups the stand-in API server has answered so far, by resource (`services`, ...). */
  liveLookups(resource: string): number;
  stop(): Promise<void>;
}

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

export async function startSession(
  env: BenchEnvironment,
  load: LoadGenerator,
  list: Workload[],
  cpu: CpuWorkload[],
): Promise<Session> {
  const serverOptions = (options: ServerOptions): ServerOptions =>
    profile ? { ...options, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] } : options;
  const probe = { path: '/mutate', body: list[0]!.body };
  const stsGuard = await startServer('sts-guard', env, serverOptions(SERVER_OPTIONS), probe);
  let baseline: ServerProcess | undefined;
  let fastify: ServerProcess | undefined;
  let compare: ServerProcess | undefined;
  let compareDiffers: string[] = [];
  const stop = async () => {
    await stsGuard.stop();
    await baseline?.stop();
    await fastify?.stop();
    await compare?.stop();
  };
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
      // The other build must reach the same verdicts before its CPU is compared.
      compare = await startServer('compare', env, SERVER_OPTIONS, probe);
      compareDiffers = await checkCompared(env, compare, list, cpu);
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
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    stsGuard,
    baseline,
    fastify,
    ...(compare ? { compare } : {}),
    compareDiffers,
    // Services should come from the watch cache; each MongoDB CREATE's /mutate lists the
    // namespace's claims (initiation window).
    liveLookups: (resource) =>
      env.api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/') && r.includes(`/${resource}`))
        .length,
    stop,
  };
}
