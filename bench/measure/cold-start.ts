/**
 * Cold start: process spawn → the first admitted review over a fresh TLS connection (retried every
 * millisecond while the port refuses), for the baseline, Fastify alone and sts-guard's /mutate (no
 * look-up) and /validate (a live GET, cache off); and the Lambda handler invoked once in a fresh
 * process (lambda-cold.mjs) against bench/baseline-lambda.mjs.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../test/support/processes.js';
import { COLD_START_OPTIONS, log, plan } from '../plan.js';
import {
  type BenchEnvironment,
  firstAdmitted,
  onCore,
  REPO,
  SERVER_CORE,
  type ServerKind,
  spawnServer,
} from '../servers.js';
import type { Workload } from '../workloads.js';

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

export interface ColdStartFigures {
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

export async function coldStarts(env: BenchEnvironment, list: Workload[]): Promise<ColdStartFigures> {
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
