import { execFile, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { freePort, stopProcess } from '../../support/processes.js';
import { repoPath, repoRoot } from '../../support/repo.js';
import { eventually } from '../../support/wait.js';
import { kubeconfigYaml } from './control-plane.js';
import { type E2eState, kubectl, kubectlOk } from './env.js';

/**
 * The background audit in the e2e suite: deploy/audit's RBAC applied as shipped, its
 * ServiceAccount's own TokenRequest token, `npm run start:audit`'s bundle started as processes of
 * the suite, and the report CRDs installed from the Go modules that publish them.
 */

const run = promisify(execFile);

export const AUDIT_NAMESPACE = 'sts-guard';
export const AUDIT_SERVICE_ACCOUNT = 'sts-guard-audit';

/** deploy/audit's ServiceAccount, ClusterRole, Role and bindings, exactly as kustomize renders them. */
export async function applyAuditRbac(state: E2eState): Promise<void> {
  const { stdout } = await run(join(state.binDir, 'kustomize'), ['build', repoPath('deploy/audit')]);
  const rbac = parseAllDocuments(stdout)
    .map((d) => d.toJS() as { kind: string })
    .filter((o) =>
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind),
    );
  await kubectlOk(
    state,
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
  );
}

/** A kubeconfig holding only a TokenRequest token of the audit's ServiceAccount. */
export async function auditKubeconfig(state: E2eState): Promise<string> {
  const token = (
    await kubectlOk(state, ['create', 'token', AUDIT_SERVICE_ACCOUNT, '-n', AUDIT_NAMESPACE, '--duration=2h'])
  ).trim();
  const file = join(state.dir, 'sts-guard-audit.kubeconfig');
  await writeFile(file, kubeconfigYaml(state.server, state.clusterCaFile, { token }));
  return file;
}

/** A report CRD set, published in a Go module: the module, its version, and the directory of CRDs in it. */
export interface CrdModule {
  module: string;
  version: string;
  dir: string;
  /** The CRDs' names, to wait for and to delete. */
  names: string[];
}

export const OPENREPORTS_CRDS: CrdModule = {
  module: 'github.com/openreports/reports-api',
  version: 'v0.2.1',
  dir: 'config/crd',
  names: ['reports.openreports.io', 'clusterreports.openreports.io'],
};

/** The pseudo-version Kubewarden pins: the proxy lists no versions of the module, but serves this one. */
export const WGPOLICY_CRDS: CrdModule = {
  module: 'sigs.k8s.io/wg-policy-prototypes',
  version: 'v0.0.0-20230505033312-51c21979086a',
  dir: 'policy-report/crd/v1alpha2',
  names: ['policyreports.wgpolicyk8s.io', 'clusterpolicyreports.wgpolicyk8s.io'],
};

/** Where `go mod download` keeps the modules: outside the repository, kept between runs. */
const cacheDir = () =>
  join(process.env.STS_GUARD_E2E_CACHE ?? join(homedir(), '.cache/sts-guard/e2e'), 'report-crds');

/** The module's directory, downloaded once through the Go module proxy (`go mod download -json`). */
export async function crdDirectory(crds: CrdModule): Promise<string> {
  await mkdir(cacheDir(), { recursive: true });
  const { stdout } = await run('go', ['mod', 'download', '-json', `${crds.module}@${crds.version}`], {
    cwd: cacheDir(),
    // Writable module files, so the cache can be deleted like any other directory.
    env: { ...process.env, GOMODCACHE: join(cacheDir(), 'gomod'), GOFLAGS: '-modcacherw', GO111MODULE: 'on' },
  });
  const { Dir, Error: error } = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!Dir) throw new Error(`go mod download ${crds.module}@${crds.version}: ${error ?? stdout}`);
  return join(Dir, crds.dir);
}

export async function installCrds(state: E2eState, crds: CrdModule): Promise<void> {
  await kubectlOk(state, ['apply', '-f', await crdDirectory(crds)]);
  for (const name of crds.names) {
    await kubectlOk(state, ['wait', '--for=condition=Established', '--timeout=60s', `crd/${name}`]);
  }
}

export async function removeCrds(state: E2eState, crds: CrdModule): Promise<void> {
  await kubectlOk(state, ['delete', 'crd', ...crds.names, '--ignore-not-found', '--wait=true']);
}

export interface AuditProcess {
  name: string;
  pid: number;
  port: number;
  logFile: string;
  env: Record<string, string>;
}

/**
 * Settings that keep the stories short: a Lease of 4 s renewed every second (client-go's defaults
 * are 15 s and 2 s), discovery every 2 s, changes rescanned 200 ms after they settle.
 */
export const FAST_AUDIT_ENV: Record<string, string> = {
  AUDIT_LEASE_DURATION_SECONDS: '4',
  AUDIT_LEASE_RENEW_DEADLINE_SECONDS: '3',
  AUDIT_LEASE_RETRY_SECONDS: '1',
  AUDIT_DISCOVERY_INTERVAL_SECONDS: '2',
  AUDIT_DEBOUNCE_MS: '200',
};

/** GET a path of an audit process (plain HTTP on AUDIT_PORT). */
export async function auditGet(p: AuditProcess, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${p.port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Starts `node dist/bundle/audit/main.mjs` (what `npm run start:audit` runs) and waits for /healthz. */
export async function startAudit(
  state: E2eState,
  name: string,
  env: Record<string, string>,
): Promise<AuditProcess> {
  const port = await freePort();
  const logFile = join(state.dir, 'logs', `audit-${name}.log`);
  const log = openSync(logFile, 'a');
  const fullEnv = { ...FAST_AUDIT_ENV, ...env, POD_NAME: name, AUDIT_PORT: String(port), HOST: '127.0.0.1' };
  const child = spawn(process.execPath, [join(repoRoot, 'dist/bundle/audit/main.mjs')], {
    cwd: repoRoot,
    env: { ...process.env, ...fullEnv },
    stdio: ['ignore', log, log],
    detached: true,
  });
  child.unref();
  if (child.pid === undefined) throw new Error('could not start the audit');
  const started: AuditProcess = { name, pid: child.pid, port, logFile, env: fullEnv };
  await eventually(`audit ${name} to answer /healthz`, async () => {
    if (child.exitCode !== null) throw new Error(`audit ${name} exited:\n${readFileSync(logFile, 'utf8')}`);
    const health = await auditGet(started, '/healthz').catch(() => undefined);
    return health?.status === 200 ? true : undefined;
  });
  return started;
}

/** Sends `signal` and waits until the process is gone. */
export async function stopAudit(p: AuditProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  await stopProcess(p.pid, { graceMs: 20_000, signal });
}

export async function auditMetrics(p: AuditProcess): Promise<string> {
  const res = await auditGet(p, '/metrics');
  if (res.status !== 200) throw new Error(`audit ${p.name} /metrics answered ${res.status}`);
  return res.body;
}

/** The log lines of an audit process whose message contains `text`. */
export const logLines = (p: AuditProcess, text: string): string[] =>
  readFileSync(p.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes(text));

/** A stored report, or undefined when there is none. */
export async function getReport<T = Record<string, unknown>>(
  state: E2eState,
  resource: string,
  namespace: string,
  name: string,
): Promise<T | undefined> {
  const got = await kubectl(state, ['get', resource, name, '-n', namespace, '-o', 'json']);
  if (got.code !== 0) {
    if (got.stderr.includes('NotFound')) return undefined;
    throw new Error(`kubectl get ${resource} ${namespace}/${name}: ${got.stderr}`);
  }
  return JSON.parse(got.stdout) as T;
}

/** The UID of a stored object: the name of its report. */
export async function uidOf(state: E2eState, kind: string, namespace: string, name: string): Promise<string> {
  return (
    await kubectlOk(state, ['get', kind, name, '-n', namespace, '-o', 'jsonpath={.metadata.uid}'])
  ).trim();
}

/** `sts-guard audit` from the built CLI, as the audit's ServiceAccount. Never throws on exit codes. */
export function auditCli(
  kubeconfig: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'bin/sts-guard.js'), 'audit', ...args],
      { cwd: repoRoot, env: { ...process.env, KUBECONFIG: kubeconfig, ...env }, maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
