/**
 * What every e2e runner starts and stops: the control plane, sts-guard the README's way, and
 * deploy/'s webhook configurations registered by URL. test/e2e/run.ts and test/e2e/argocd/run.ts
 * both start it, then add what their stories need.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { controlPlaneBinaries, machineKubectl } from './binaries.js';
import { type ControlPlane, freePort, kubeconfigYaml, startControlPlane } from './control-plane.js';
import type { E2eState } from './env.js';
import { repoRoot, type StsGuardProcess, startStsGuard, stopStsGuard } from './sts-guard.js';
import { renderWebhooks } from './webhooks.js';

const run = promisify(execFile);

export const say = (message: string) =>
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** kubectl as the admin; throws with its stderr. */
export async function kubectlAs(
  kubectlPath: string,
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlPath,
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`kubectl ${args.join(' ')}: ${stderr || error.message}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface Suite {
  state: E2eState;
  plane: ControlPlane;
}

/**
 * Builds (or finds cached) the binaries and starts the control plane, sts-guard and its webhook
 * registration, with state, logs and certificates under `dir`. Stops what it started on failure.
 */
export async function startSuite(dir: string): Promise<Suite> {
  const binDir = await controlPlaneBinaries();
  // The kubectl built with the control plane (same minor as the API server), unless overridden.
  const kubectlPath = process.env.STS_GUARD_E2E_KUBECTL ?? join(binDir, 'kubectl');
  if (!existsSync(kubectlPath))
    throw new Error(`no kubectl at ${kubectlPath}: run test/e2e/control-plane/build.sh`);
  const machine = machineKubectl(binDir);
  say(`control plane binaries: ${binDir}; kubectl: ${kubectlPath}; machine kubectl: ${machine ?? 'none'}`);
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH}`;
  await mkdir(join(dir, 'logs'), { recursive: true });
  await mkdir(join(dir, 'exceptions'), { recursive: true });

  say('starting etcd, kube-apiserver and kube-controller-manager');
  const plane = await startControlPlane(binDir, join(dir, 'control-plane'));
  let stsGuard: StsGuardProcess | undefined;
  try {
    const admin = plane.adminKubeconfig;
    say(`API server ready at ${plane.server}`);

    // sts-guard's namespace, ServiceAccount and RBAC exactly as deploy/ ships them.
    await kubectlAs(kubectlPath, admin, ['apply', '-k', join(repoRoot, 'deploy/common')]);
    // Its serving certificate from the script users run (certs/generate.sh): 127.0.0.1 for the
    // API server, localhost for the suite's own requests (they send SNI localhost).
    const certs = join(dir, 'certs');
    await run('bash', [
      join(repoRoot, 'certs/generate.sh'),
      '--host',
      '127.0.0.1',
      '--host',
      'localhost',
      '--out',
      certs,
    ]);
    // Credentials: the ServiceAccount's own token from the TokenRequest API, so every look-up in
    // the suite is made with exactly the RBAC deploy/ grants.
    const token = (
      await kubectlAs(kubectlPath, admin, [
        'create',
        'token',
        'sts-guard',
        '-n',
        'sts-guard',
        '--duration=6h',
      ])
    ).trim();
    const saKubeconfig = join(dir, 'sts-guard.kubeconfig');
    await writeFile(saKubeconfig, kubeconfigYaml(plane.server, plane.caFile, { token }));

    const port = await freePort();
    say('starting sts-guard with `npm start`');
    stsGuard = await startStsGuard({
      port,
      caFile: join(certs, 'ca.crt'),
      env: {
        TLS_CERT_FILE: join(certs, 'tls.crt'),
        TLS_KEY_FILE: join(certs, 'tls.key'),
        KUBECONFIG: saKubeconfig,
        SHUTDOWN_DRAIN_MS: '0',
        // Where deploy/ mounts the sts-guard-exceptions ConfigMap; absent until a story writes it.
        EXCEPTIONS_FILE: join(dir, 'exceptions', 'exceptions.yaml'),
      },
      logFile: join(dir, 'logs', 'sts-guard.log'),
      build: process.env.STS_GUARD_E2E_NO_BUILD !== '1',
    });
    say(`sts-guard ready at ${stsGuard.url}`);

    const webhooks = await renderWebhooks(
      binDir,
      dir,
      `127.0.0.1:${port}`,
      await readFile(join(certs, 'ca.crt'), 'utf8'),
    );
    await writeFile(join(dir, 'webhooks.yaml'), webhooks);
    await kubectlAs(kubectlPath, admin, ['apply', '-f', join(dir, 'webhooks.yaml')]);

    const state: E2eState = {
      server: plane.server,
      adminKubeconfig: admin,
      clusterCaFile: plane.caFile,
      auditLog: plane.auditLog,
      dir,
      binDir,
      kubectl: kubectlPath,
      machineKubectl: machine,
      stsGuard,
      stsGuardPort: port,
    };
    return { state, plane };
  } catch (error) {
    if (stsGuard) await stopStsGuard(stsGuard.pid);
    await plane.stop();
    throw error;
  }
}

/**
 * Stops sts-guard (by the PID the state file holds: a story may have restarted it) and the
 * control plane; removes `dir` unless kept.
 */
export async function stopSuite(suite: Suite | undefined, stateFile: string, dir: string, keep: boolean) {
  const state = existsSync(stateFile)
    ? (JSON.parse(await readFile(stateFile, 'utf8')) as E2eState)
    : suite?.state;
  if (state?.stsGuard.pid) await stopStsGuard(state.stsGuard.pid);
  await suite?.plane.stop();
  if (keep) say(`state, logs and kubeconfigs kept in ${dir}`);
  else await rm(dir, { recursive: true, force: true });
}

/** Runs test files one at a time with tap, handing them the state file. Resolves tap's exit code. */
export function runStories(files: string[], stateFile: string, timeoutSeconds = 900): Promise<number> {
  return new Promise<number>((resolve) => {
    const tap = spawn(
      join(repoRoot, 'node_modules/.bin/tap'),
      ['--jobs=1', `--timeout=${timeoutSeconds}`, '--disable-coverage', ...files],
      {
        cwd: repoRoot,
        stdio: 'inherit',
        env: { ...process.env, STS_GUARD_E2E_STATE: stateFile },
      },
    );
    tap.on('exit', (code) => resolve(code ?? 1));
  });
}
