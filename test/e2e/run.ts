/**
 * `npm run test:e2e`: sts-guard against a real control plane (etcd, kube-apiserver,
 * kube-controller-manager built by test/e2e/control-plane/build.sh), driven by the machine's
 * kubectl. Starts everything once, runs the e2e test files (test/e2e/*.e2e.ts) one after another
 * with STS_GUARD_E2E_STATE naming what was started, then tears everything down.
 *
 *   npm run test:e2e                      every story
 *   npm run test:e2e -- test/e2e/drift.e2e.ts   one file
 *   STS_GUARD_E2E_KEEP=1 npm run test:e2e keep the state directory (logs, kubeconfigs) afterwards
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { type ControlPlane, freePort, kubeconfigYaml, startControlPlane } from './support/control-plane.js';
import type { E2eState } from './support/env.js';
import {
  controlPlaneBinaries,
  kubectl,
  machineKubectl,
  renderWebhooks,
  runStories,
  say,
} from './support/setup.js';
import { repoRoot, type StsGuardProcess, startStsGuard, stopStsGuard } from './support/sts-guard.js';

const run = promisify(execFile);

async function main(): Promise<number> {
  const started = Date.now();
  const binDir = await controlPlaneBinaries();
  const kubectlPath = machineKubectl();
  say(`control plane binaries: ${binDir}; kubectl: ${kubectlPath}`);
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH}`;
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-e2e-'));
  await mkdir(join(dir, 'logs'), { recursive: true });
  await mkdir(join(dir, 'exceptions'), { recursive: true });
  let plane: ControlPlane | undefined;
  let stsGuard: StsGuardProcess | undefined;
  const stateFile = join(dir, 'state.json');
  let status = 1;
  try {
    say('starting etcd, kube-apiserver and kube-controller-manager');
    plane = await startControlPlane(binDir, join(dir, 'control-plane'));
    const admin = plane.adminKubeconfig;
    say(`API server ready at ${plane.server}`);

    // sts-guard's namespace, ServiceAccount and RBAC exactly as deploy/ ships them.
    await kubectl(kubectlPath, admin, ['apply', '-k', join(repoRoot, 'deploy/common')]);
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
      await kubectl(kubectlPath, admin, ['create', 'token', 'sts-guard', '-n', 'sts-guard', '--duration=6h'])
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
    await kubectl(kubectlPath, admin, ['apply', '-f', join(dir, 'webhooks.yaml')]);

    const state: E2eState = {
      server: plane.server,
      adminKubeconfig: admin,
      clusterCaFile: plane.caFile,
      auditLog: plane.auditLog,
      dir,
      binDir,
      kubectl: kubectlPath,
      stsGuard,
      stsGuardPort: port,
    };
    await writeFile(stateFile, JSON.stringify(state, null, 2));

    const files = process.argv.slice(2);
    const tests =
      files.length > 0
        ? files
        : readdirSync(join(repoRoot, 'test/e2e'))
            .filter((f) => f.endsWith('.e2e.ts'))
            .sort()
            .map((f) => join('test/e2e', f));
    status = await runStories(tests, stateFile);
  } catch (error) {
    say(`setup failed: ${error instanceof Error ? error.message : error}`);
    status = 1;
  } finally {
    const state = existsSync(stateFile)
      ? (JSON.parse(await readFile(stateFile, 'utf8')) as E2eState)
      : undefined;
    const pid = state?.stsGuard.pid ?? stsGuard?.pid;
    if (pid) await stopStsGuard(pid);
    await plane?.stop();
    const keep = process.env.STS_GUARD_E2E_KEEP === '1' || status !== 0;
    if (keep) say(`state, logs and kubeconfigs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
    say(`e2e finished in ${Math.round((Date.now() - started) / 1000)} s with status ${status}`);
  }
  return status;
}

process.exitCode = await main();
