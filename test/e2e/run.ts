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
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { freePort } from '../support/processes.js';
import { repoRoot } from '../support/repo.js';
import { type ControlPlane, kubeconfigYaml, startControlPlane } from './support/control-plane.js';
import type { E2eState } from './support/env.js';
import { type StsGuardProcess, startStsGuard, stopStsGuard } from './support/sts-guard.js';

const run = promisify(execFile);
const say = (message: string) =>
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Builds (or finds cached) the control plane; the script's last stdout line is the bin directory. */
async function controlPlaneBinaries(): Promise<string> {
  if (process.env.STS_GUARD_E2E_BIN) return process.env.STS_GUARD_E2E_BIN;
  const script = join(repoRoot, 'test/e2e/control-plane/build.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => {
      if (code === 0) resolve(out.trim().split('\n').at(-1) ?? '');
      else reject(new Error(`${script} exited with ${code}`));
    });
  });
}

/**
 * The machine's newest kubectl: its cloud SDK keeps other minor versions beside it as
 * kubectl.1.NN. STS_GUARD_E2E_KUBECTL overrides.
 */
function machineKubectl(): string {
  if (process.env.STS_GUARD_E2E_KUBECTL) return process.env.STS_GUARD_E2E_KUBECTL;
  const candidates: Array<{ path: string; minor: number }> = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!existsSync(join(dir, 'kubectl'))) continue;
    // /usr/bin/kubectl is usually a link into the SDK, where its siblings live.
    const sdk = dirname(realpathSync(join(dir, 'kubectl')));
    for (const entry of readdirSync(sdk)) {
      const minor = /^kubectl\.1\.(\d+)$/.exec(entry)?.[1];
      if (minor) candidates.push({ path: join(sdk, entry), minor: Number(minor) });
    }
    candidates.push({ path: join(dir, 'kubectl'), minor: -1 });
  }
  candidates.sort((a, b) => b.minor - a.minor);
  const chosen = candidates[0];
  if (!chosen) throw new Error('kubectl is not on PATH: the e2e suite drives the API server with it');
  return chosen.path;
}

async function kubectl(
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

/**
 * deploy/'s webhook configurations, pointed at this sts-guard: the same files through the
 * url-registration component (clientConfig.url) plus the caBundle of the certificate it serves.
 */
async function renderWebhooks(binDir: string, dir: string, host: string, caPem: string): Promise<string> {
  const kustomization = join(dir, 'webhooks');
  await mkdir(kustomization, { recursive: true });
  const from = (path: string) => relative(kustomization, join(repoRoot, path));
  await writeFile(
    join(kustomization, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [from('deploy/webhooks'), 'endpoint.yaml'],
      components: [from('deploy/serverless/components/url-registration')],
    }),
  );
  await writeFile(
    join(kustomization, 'endpoint.yaml'),
    stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'sts-guard-endpoint', annotations: { 'config.kubernetes.io/local-config': 'true' } },
      data: { host },
    }),
  );
  const { stdout } = await run(join(binDir, 'kustomize'), ['build', kustomization]);
  const caBundle = Buffer.from(caPem).toString('base64');
  const objects = parseAllDocuments(stdout).map(
    (d) => d.toJS() as KubernetesObject & { webhooks?: unknown[] },
  );
  for (const object of objects) {
    for (const webhook of (object.webhooks ?? []) as Array<{ clientConfig: Record<string, unknown> }>) {
      webhook.clientConfig.caBundle = caBundle;
    }
  }
  return objects.map((o) => stringify(o)).join('---\n');
}

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
    say(`running ${tests.length} e2e file(s)`);
    status = await new Promise<number>((resolve) => {
      const tap = spawn(
        join(repoRoot, 'node_modules/.bin/tap'),
        ['--jobs=1', '--timeout=900', '--disable-coverage', ...tests],
        {
          cwd: repoRoot,
          stdio: 'inherit',
          env: { ...process.env, STS_GUARD_E2E_STATE: stateFile },
        },
      );
      tap.on('exit', (code) => resolve(code ?? 1));
    });
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
