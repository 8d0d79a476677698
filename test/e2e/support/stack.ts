/**
 * Everything the e2e stories and the chainsaw scenarios run against, started once: the real
 * control plane (etcd, kube-apiserver, kube-controller-manager built by
 * test/e2e/control-plane/build.sh), deploy/common applied, and sts-guard started with `npm start`
 * as its ServiceAccount and registered with deploy/webhooks. `npm run bench:latency` starts the
 * same stack.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { repoPath } from '../../support/repo.js';
import { type ControlPlane, startControlPlane } from './control-plane.js';
import { type E2eState, kubectlOk } from './env.js';
import {
  clusterKubectl,
  controlPlaneBinaries,
  machineKubectl,
  renderWebhooks,
  say,
  serverCertificate,
} from './setup.js';
import { type StsGuardProcess, startStsGuardAs, stopStsGuard, stsGuardPort } from './sts-guard.js';

export { say };

export interface E2eStack {
  state: E2eState;
  /** The state as JSON, for STS_GUARD_E2E_STATE (a story that restarts sts-guard rewrites it). */
  stateFile: string;
  /** Stops sts-guard and the control plane; keeps the state directory when asked or when `failed`. */
  stop(failed: boolean): Promise<void>;
}

/** Starts the control plane and sts-guard, registered as deploy/ registers it. */
export async function startE2eStack(): Promise<E2eStack> {
  const binDir = await controlPlaneBinaries();
  const kubectlPath = clusterKubectl(binDir);
  const machine = machineKubectl(binDir);
  say(`control plane binaries: ${binDir}; kubectl: ${kubectlPath}; machine kubectl: ${machine ?? 'none'}`);
  // The real kustomize first on PATH: src/render/kustomize.ts prefers it to `kubectl kustomize`.
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH}`;
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-e2e-'));
  await mkdir(join(dir, 'logs'), { recursive: true });
  await mkdir(join(dir, 'exceptions'), { recursive: true });
  const stateFile = join(dir, 'state.json');
  let plane: ControlPlane | undefined;
  let stsGuard: StsGuardProcess | undefined;
  const stop = async (failed: boolean) => {
    const saved = existsSync(stateFile)
      ? (JSON.parse(await readFile(stateFile, 'utf8')) as E2eState)
      : undefined;
    // A story may have restarted sts-guard: the state file has its current process group.
    const pid = saved?.stsGuard.pid ?? stsGuard?.pid;
    if (pid) await stopStsGuard(pid);
    await plane?.stop();
    if (process.env.STS_GUARD_E2E_KEEP === '1' || failed) say(`state, logs and kubeconfigs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  };
  try {
    say('starting etcd, kube-apiserver and kube-controller-manager');
    plane = await startControlPlane(binDir, join(dir, 'control-plane'));
    const admin = { kubectl: kubectlPath, adminKubeconfig: plane.adminKubeconfig, binDir };
    say(`API server ready at ${plane.server}`);

    // sts-guard's namespace, ServiceAccount and RBAC exactly as deploy/ ships them.
    await kubectlOk(admin, ['apply', '-k', repoPath('deploy/common')]);
    // Its serving certificate from the script users run (certs/generate.sh).
    const certs = await serverCertificate(dir);
    // Credentials: the ServiceAccount's own token from the TokenRequest API, so every look-up in
    // the suite is made with exactly the RBAC deploy/ grants.
    const token = (
      await kubectlOk(admin, ['create', 'token', 'sts-guard', '-n', 'sts-guard', '--duration=6h'])
    ).trim();
    say('starting sts-guard with `npm start`');
    stsGuard = await startStsGuardAs({
      token,
      server: plane.server,
      clusterCaFile: plane.caFile,
      certs,
      dir,
      // Where deploy/ mounts the sts-guard-exceptions ConfigMap; absent until a story writes it.
      env: { EXCEPTIONS_FILE: join(dir, 'exceptions', 'exceptions.yaml') },
    });
    const port = stsGuardPort(stsGuard);
    say(`sts-guard ready at ${stsGuard.url}`);

    const webhooks = await renderWebhooks(
      binDir,
      dir,
      `127.0.0.1:${port}`,
      await readFile(join(certs, 'ca.crt'), 'utf8'),
    );
    await writeFile(join(dir, 'webhooks.yaml'), webhooks);
    await kubectlOk(admin, ['apply', '-f', join(dir, 'webhooks.yaml')]);

    const state: E2eState = {
      server: plane.server,
      adminKubeconfig: plane.adminKubeconfig,
      clusterCaFile: plane.caFile,
      auditLog: plane.auditLog,
      dir,
      binDir,
      kubectl: kubectlPath,
      machineKubectl: machine,
      stsGuard,
      stsGuardPort: port,
    };
    await writeFile(stateFile, JSON.stringify(state, null, 2));
    return { state, stateFile, stop };
  } catch (error) {
    say(`setup failed: ${error instanceof Error ? error.message : error}`);
    await stop(true);
    throw error;
  }
}
