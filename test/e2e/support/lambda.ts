/**
 * sts-guard's Lambda bundle (deploy/serverless/build-lambda.mjs → index.mjs, handler
 * index.handler) run the way Lambda runs a function: the AWS Lambda Runtime Interface Emulator
 * (aws-lambda-rie, built from its Go module by control-plane/build-lambda-emulator.sh) serves the
 * Runtime API and starts the runtime interface client (aws-lambda-ric, built by
 * deploy/serverless/build-ric-layer.sh), which loads the handler from the task root and polls for
 * invocations. As on Lambda, nothing starts before the first invocation: init (loading index.mjs,
 * building the app) is part of the first request after a start.
 *
 * The function gets the environment docs/deploy.md prescribes and only that (Lambda's reserved
 * variables plus the function's own), and, where this machine lets a process create cgroups, the
 * memory and CPU a 512 MB function has: a memory limit of 512 MiB, and CPU "in proportion to the
 * amount of memory configured … at 1,769 MB, a function has the equivalent of one vCPU" (AWS
 * Lambda Developer Guide, "Configure Lambda function memory"), i.e. a CFS quota of 512/1769 of
 * one core, for the init phase and every invocation alike.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopProcess } from '../../support/processes.js';
import { type E2eState, loadState } from './env.js';

/** What docs/deploy.md prescribes for the function (step 3); STS_GUARD_E2E_LAMBDA_MEMORY_MB to try another size. */
export const FUNCTION_MEMORY_MB = Number(process.env.STS_GUARD_E2E_LAMBDA_MEMORY_MB ?? 512);
export const FUNCTION_TIMEOUT_S = 10;
/** At this much memory a function has one vCPU. */
export const MB_PER_VCPU = 1769;

export interface LambdaFunctionSpec {
  /** The aws-lambda-rie binary. */
  emulator: string;
  /** A layer directory: <layer>/nodejs/node_modules/aws-lambda-ric. */
  layer: string;
  /** What Lambda extracts the deployment package to (/var/task): build-lambda.mjs's output. */
  taskRoot: string;
  /** The function's own environment variables (KUBECONFIG, LOOKUP_TIMEOUT_MS, LOG_LEVEL...). */
  environment: Record<string, string>;
  /** The emulator's invoke endpoint listens here (127.0.0.1). */
  port: number;
  /** The Runtime API the client polls (127.0.0.1); not the emulator's default 9001, which another run may hold. */
  runtimeApiPort: number;
  logFile: string;
  /** Cap memory and CPU as Lambda does for FUNCTION_MEMORY_MB (when cgroups can be made here). */
  limits: boolean;
}

export interface LambdaFunctionProcess {
  /** The emulator's process group (the emulator and the runtime it starts). */
  pid: number;
  /** http://127.0.0.1:<port>: POST /2015-03-31/functions/function/invocations */
  url: string;
  /** What confined it, or why nothing did. */
  limits:
    | { memoryBytes: number; cpuQuotaUs: number; cpuPeriodUs: number; cgroups: string[] }
    | { none: string };
  spec: LambdaFunctionSpec;
}

const CGROUP_V1 = '/sys/fs/cgroup';

/**
 * A cgroup v1 memory and cpu group for one function start, or why there is none (no cgroup v1
 * hierarchy, or not allowed to make groups, as in most unprivileged containers).
 */
function makeCgroups(name: string): LambdaFunctionProcess['limits'] {
  const memory = join(CGROUP_V1, 'memory', name);
  const cpu = join(CGROUP_V1, 'cpu', name);
  if (
    !existsSync(join(CGROUP_V1, 'memory', 'memory.limit_in_bytes')) ||
    !existsSync(join(CGROUP_V1, 'cpu'))
  ) {
    return { none: 'no cgroup v1 memory and cpu hierarchies at /sys/fs/cgroup' };
  }
  try {
    mkdirSync(memory, { recursive: true });
    mkdirSync(cpu, { recursive: true });
    const memoryBytes = FUNCTION_MEMORY_MB * 1024 * 1024;
    writeFileSync(join(memory, 'memory.limit_in_bytes'), String(memoryBytes));
    const cpuPeriodUs = Number(readFileSync(join(cpu, 'cpu.cfs_period_us'), 'utf8'));
    const cpuQuotaUs = Math.round((cpuPeriodUs * FUNCTION_MEMORY_MB) / MB_PER_VCPU);
    writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(cpuQuotaUs));
    return { memoryBytes, cpuQuotaUs, cpuPeriodUs, cgroups: [memory, cpu] };
  } catch (error) {
    removeCgroups([memory, cpu]);
    return { none: `cannot create cgroups here: ${error instanceof Error ? error.message : error}` };
  }
}

function removeCgroups(paths: string[]) {
  for (const path of paths) {
    try {
      rmdirSync(path);
    } catch {
      // Already gone, or still holding a process that is exiting: the kernel frees it when empty.
    }
  }
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** The environment of the function's processes: Lambda's reserved variables and the function's own. */
export function functionEnvironment(spec: LambdaFunctionSpec): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    LAMBDA_TASK_ROOT: spec.taskRoot,
    AWS_LAMBDA_FUNCTION_NAME: 'sts-guard',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(FUNCTION_MEMORY_MB),
    // The emulator ends an invocation that outlives this, as Lambda does.
    AWS_LAMBDA_FUNCTION_TIMEOUT: String(FUNCTION_TIMEOUT_S),
    AWS_REGION: 'eu-west-1',
    AWS_DEFAULT_REGION: 'eu-west-1',
    ...spec.environment,
  };
}

/**
 * Starts the emulator with the runtime interface client as its bootstrap (the container-image
 * way: `aws-lambda-rie node …/aws-lambda-ric/index.mjs index.handler`) and waits until the
 * emulator accepts connections. The runtime itself starts with the first invocation.
 */
export async function startLambdaFunction(spec: LambdaFunctionSpec): Promise<LambdaFunctionProcess> {
  // Absolute: the emulator starts the runtime in the task root.
  const ric = resolve(spec.layer, 'nodejs/node_modules/aws-lambda-ric/index.mjs');
  if (!existsSync(ric))
    throw new Error(`no runtime interface client at ${ric}: run deploy/serverless/build-ric-layer.sh`);
  const limits: LambdaFunctionProcess['limits'] = spec.limits
    ? makeCgroups(`sts-guard-lambda-${process.pid}-${spec.port}`)
    : { none: 'not asked for (STS_GUARD_E2E_LAMBDA_LIMITS=0)' };
  const log = openSync(spec.logFile, 'a');
  const child = spawn(
    spec.emulator,
    [
      '--runtime-interface-emulator-address',
      `127.0.0.1:${spec.port}`,
      '--runtime-api-address',
      `127.0.0.1:${spec.runtimeApiPort}`,
      // The node sts-guard ships on (24), standing for the runtime's /var/lang/bin/node.
      process.execPath,
      ric,
      'index.handler',
    ],
    { cwd: spec.taskRoot, env: functionEnvironment(spec), stdio: ['ignore', log, log], detached: true },
  );
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${spec.emulator}`);
  // Before the first invocation the emulator has started nothing else, so every process of the
  // function (the runtime, and anything it starts) is born inside these groups.
  if ('cgroups' in limits) {
    for (const group of limits.cgroups) writeFileSync(join(group, 'cgroup.procs'), String(pid));
  }
  const deadline = Date.now() + 30_000;
  while (!(await listening(spec.port))) {
    if (child.exitCode !== null) {
      throw new Error(
        `aws-lambda-rie exited with ${child.exitCode}: ${readFileSync(spec.logFile, 'utf8').slice(-2000)}`,
      );
    }
    if (Date.now() > deadline) throw new Error('aws-lambda-rie did not listen within 30 s');
    await sleep(50);
  }
  return { pid, url: `http://127.0.0.1:${spec.port}`, limits, spec };
}

/** Stops the emulator and the runtime (their process group), and removes their cgroups. */
export async function stopLambdaFunction(fn: Pick<LambdaFunctionProcess, 'pid' | 'limits'>): Promise<void> {
  await stopProcess(-fn.pid, { graceMs: 5_000 });
  if ('cgroups' in fn.limits) removeCgroups(fn.limits.cgroups);
}

/** The emulator's REPORT lines since `from` (a byte offset into its log): Lambda's per-invocation summary. */
export function reports(logFile: string, from = 0): Array<{ initMs?: number; durationMs: number }> {
  const text = readFileSync(logFile, 'utf8').slice(from);
  const found: Array<{ initMs?: number; durationMs: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('REPORT RequestId:')) continue;
    const init = /Init Duration: ([\d.]+) ms/.exec(line)?.[1];
    const duration = /\tDuration: ([\d.]+) ms/.exec(line)?.[1];
    found.push({ ...(init ? { initMs: Number(init) } : {}), durationMs: Number(duration) });
  }
  return found;
}

/** What run-lambda.ts started, for the Lambda path's stories (STS_GUARD_E2E_STATE). */
export interface LambdaE2eState extends E2eState {
  lambda: {
    function: LambdaFunctionProcess;
    /** The Function URL front (the stand-in) the webhooks call. */
    frontUrl: string;
    frontPort: number;
    /** The front's journal: one JSON line per request (support/function-url.ts, Invocation). */
    journal: string;
  };
}

export function loadLambdaState(): LambdaE2eState {
  const state = loadState() as LambdaE2eState;
  if (!state.lambda) {
    throw new Error(
      'no Lambda function in the e2e state: run the Lambda path with `npm run test:e2e:lambda`',
    );
  }
  return state;
}

/**
 * Stops the function and starts it again with the same emulator, client, package and
 * environment: a new execution environment, whose first invocation is a cold start. The front
 * keeps its address; the emulator keeps its port.
 */
export async function restartLambdaFunction(state: LambdaE2eState): Promise<void> {
  await stopLambdaFunction(state.lambda.function);
  state.lambda.function = await startLambdaFunction(state.lambda.function.spec);
  const file = process.env.STS_GUARD_E2E_STATE;
  if (file) writeFileSync(file, JSON.stringify(state, null, 2));
}
