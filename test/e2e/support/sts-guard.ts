import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpsCall } from '../../support/https.js';
import { freePort, logTail, stopProcess } from '../../support/processes.js';
import { repoRoot } from '../../support/repo.js';
import { kubeconfigYaml } from './control-plane.js';

/** How the e2e suite runs sts-guard: the README's `npm start`, with a real serving certificate. */
export interface StsGuardProcess {
  /** The process group of `npm start` (npm, its shell and node). */
  pid: number;
  /** https://127.0.0.1:<port> */
  url: string;
  /** The CA that signed the serving certificate (the webhooks' caBundle). */
  caFile: string;
  logFile: string;
  env: Record<string, string>;
}

/** GET a path on sts-guard, trusting only its CA, as the API server does. */
export async function stsGuardGet(base: { url: string; caFile: string }, path: string) {
  return httpsCall(Number(new URL(base.url).port), path, { ca: await readFile(base.caFile, 'utf8') });
}

/**
 * Starts sts-guard the README's way. `build: true` runs `npm start` as written (its prestart
 * builds dist/); later restarts run the same `start` script without rebuilding.
 */
export async function startStsGuard(options: {
  port: number;
  caFile: string;
  env: Record<string, string>;
  logFile: string;
  build: boolean;
}): Promise<StsGuardProcess> {
  const env = { ...options.env, PORT: String(options.port), HOST: '127.0.0.1' };
  const log = openSync(options.logFile, 'a');
  const args = options.build ? ['start'] : ['run', 'start', '--ignore-scripts'];
  // Its own process group, so stopping it stops npm, the shell and node together.
  const child = spawn('npm', args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
    detached: true,
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start npm start');
  const url = `https://127.0.0.1:${options.port}`;
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`sts-guard exited with ${child.exitCode}:\n${await logTail(options.logFile)}`);
    }
    const ready = await stsGuardGet({ url, caFile: options.caFile }, '/readyz').catch(() => undefined);
    if (ready?.statusCode === 200) return { pid, url, caFile: options.caFile, logFile: options.logFile, env };
    await sleep(300);
  }
  throw new Error(`sts-guard did not become ready:\n${await logTail(options.logFile)}`);
}

/**
 * `npm start` as deploy/ runs it, on a free port: the serving certificate from certs/generate.sh
 * (in `certs`) and a kubeconfig holding only the ServiceAccount's `token` (from the TokenRequest
 * API), so every look-up is made with exactly the RBAC deploy/ grants. Logs go to `<dir>/logs`.
 */
export async function startStsGuardAs(options: {
  token: string;
  server: string;
  clusterCaFile: string;
  certs: string;
  dir: string;
  env?: Record<string, string>;
}): Promise<StsGuardProcess> {
  const kubeconfig = join(options.dir, 'sts-guard.kubeconfig');
  await writeFile(
    kubeconfig,
    kubeconfigYaml(options.server, options.clusterCaFile, { token: options.token }),
  );
  return startStsGuard({
    port: await freePort(),
    caFile: join(options.certs, 'ca.crt'),
    env: {
      TLS_CERT_FILE: join(options.certs, 'tls.crt'),
      TLS_KEY_FILE: join(options.certs, 'tls.key'),
      KUBECONFIG: kubeconfig,
      SHUTDOWN_DRAIN_MS: '0',
      ...options.env,
    },
    logFile: join(options.dir, 'logs', 'sts-guard.log'),
    build: process.env.STS_GUARD_E2E_NO_BUILD !== '1',
  });
}

/** The port of a started sts-guard (its url is https://127.0.0.1:<port>). */
export const stsGuardPort = (stsGuard: StsGuardProcess) => Number(new URL(stsGuard.url).port);

/** SIGTERM to the whole group, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopStsGuard(pid: number, graceMs = 15_000): Promise<void> {
  await stopProcess(-pid, { graceMs, pollMs: 100 });
}
