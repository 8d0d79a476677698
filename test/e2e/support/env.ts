import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '../../support/wait.js';
import { type StsGuardProcess, startStsGuard, stopStsGuard, stsGuardGet } from './sts-guard.js';

/** What test/e2e/run.ts started, handed to each e2e test file through STS_GUARD_E2E_STATE. */
export interface E2eState {
  server: string;
  adminKubeconfig: string;
  clusterCaFile: string;
  auditLog: string;
  dir: string;
  binDir: string;
  /** The kubectl built with the control plane (test/e2e/control-plane/build.sh), same minor. */
  kubectl: string;
  /** The machine's own kubectl, for the skew story alone (undefined when there is none). */
  machineKubectl?: string;
  stsGuard: StsGuardProcess;
  stsGuardPort: number;
}

export const scenario = (name: string) => fileURLToPath(new URL(`../scenarios/${name}`, import.meta.url));

export function loadState(): E2eState {
  const file = process.env.STS_GUARD_E2E_STATE;
  if (!file) {
    throw new Error(
      'STS_GUARD_E2E_STATE is not set: run the e2e suite with `npm run test:e2e`, which starts the control plane',
    );
  }
  return JSON.parse(readFileSync(file, 'utf8')) as E2eState;
}

function saveState(state: E2eState): void {
  const file = process.env.STS_GUARD_E2E_STATE;
  if (file) writeFileSync(file, JSON.stringify(state, null, 2));
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** What kubectl needs to drive the e2e API server as a cluster admin. */
export type KubectlTarget = Pick<E2eState, 'kubectl' | 'adminKubeconfig' | 'binDir'>;

/** `state.kubectl` (the control plane's own build) against the e2e API server as a cluster admin. Never throws on exit codes. */
export function kubectl(state: KubectlTarget, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      state.kubectl,
      args,
      {
        env: {
          ...process.env,
          KUBECONFIG: state.adminKubeconfig,
          PATH: `${state.binDir}:${process.env.PATH}`,
        },
        maxBuffer: 32 * 1024 * 1024,
        timeout: 120_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** kubectl that must succeed; its stderr is in the error when it does not. */
export async function kubectlOk(state: KubectlTarget, args: string[], input?: string): Promise<string> {
  const result = await kubectl(state, args, input);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

export async function getJson<T = Record<string, unknown>>(state: E2eState, args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(state, ['get', ...args, '-o', 'json'])) as T;
}

/** sts-guard's Prometheus text. */
export async function stsGuardMetrics(state: E2eState): Promise<string> {
  const res = await stsGuardGet(state.stsGuard, '/metrics');
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`);
  return res.body;
}

/** Sum of a metric's samples whose labels include every pair in `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A fresh namespace per story, so stories never see each other's objects. */
export async function freshNamespace(state: E2eState, name: string, labels: Record<string, string> = {}) {
  await kubectl(state, ['delete', 'namespace', name, '--wait=true', '--ignore-not-found']);
  await kubectlOk(state, ['create', 'namespace', name]);
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  if (pairs.length > 0) await kubectlOk(state, ['label', 'namespace', name, ...pairs]);
  // Pods need the namespace's default ServiceAccount, which the controller manager creates.
  await eventually(`ServiceAccount ${name}/default`, async () =>
    (await kubectl(state, ['get', 'serviceaccount', 'default', '-n', name])).code === 0 ? true : undefined,
  );
}

/** Stops sts-guard (SIGTERM to `npm start`'s process group). */
export async function stopWebhook(state: E2eState): Promise<void> {
  await stopStsGuard(state.stsGuard.pid);
}

/** Starts sts-guard again with the same certificate, port and credentials, without rebuilding. */
export async function restartWebhook(state: E2eState, extraEnv: Record<string, string> = {}): Promise<void> {
  await stopStsGuard(state.stsGuard.pid);
  state.stsGuard = await startStsGuard({
    port: state.stsGuardPort,
    caFile: state.stsGuard.caFile,
    env: { ...state.stsGuard.env, ...extraEnv },
    logFile: state.stsGuard.logFile,
    build: false,
  });
  saveState(state);
}

export const logDir = (state: E2eState) => join(state.dir, 'logs');

/** The audit annotations the API server recorded for the ResponseComplete of a create of `name`. */
export async function auditAnnotationsOf(
  state: E2eState,
  namespace: string,
  resource: string,
  name: string,
): Promise<Record<string, string>> {
  return eventually(
    `the audit event of creating ${resource} ${namespace}/${name}`,
    async () => {
      const lines = readFileSync(state.auditLog, 'utf8').split('\n').filter(Boolean);
      for (const line of lines.reverse()) {
        const event = JSON.parse(line) as {
          verb: string;
          stage: string;
          objectRef?: { resource?: string; namespace?: string; name?: string };
          annotations?: Record<string, string>;
        };
        const ref = event.objectRef;
        if (
          event.verb === 'create' &&
          event.stage === 'ResponseComplete' &&
          ref?.resource === resource &&
          ref.namespace === namespace &&
          ref.name === name
        ) {
          return event.annotations ?? {};
        }
      }
      return undefined;
    },
    15_000,
  );
}
