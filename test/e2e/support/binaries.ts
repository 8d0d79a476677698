import { spawn } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { repoRoot } from './sts-guard.js';

/**
 * Runs one of the cached build scripts (test/e2e/control-plane/*.sh): progress goes to stderr,
 * the last stdout line is the directory it built into (a warm cache answers in about a second).
 */
export function runBuildScript(script: string, env: Record<string, string> = {}): Promise<string> {
  const path = join(repoRoot, script);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => {
      if (code === 0) resolve(out.trim().split('\n').at(-1) ?? '');
      else reject(new Error(`${path} exited with ${code}`));
    });
  });
}

/** The control plane's bin directory (etcd, kube-apiserver, kube-controller-manager, kubectl, kustomize). */
export async function controlPlaneBinaries(): Promise<string> {
  if (process.env.STS_GUARD_E2E_BIN) return process.env.STS_GUARD_E2E_BIN;
  return runBuildScript('test/e2e/control-plane/build.sh');
}

/**
 * The machine's newest kubectl, kept for the one story that checks kubectl outside the supported
 * skew (test/e2e/kubectl-skew.e2e.ts): a cloud SDK keeps other minor versions beside it as
 * kubectl.1.NN. Undefined when none is on PATH.
 */
export function machineKubectl(binDir: string): string | undefined {
  const candidates: Array<{ path: string; minor: number }> = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === binDir || !existsSync(join(dir, 'kubectl'))) continue;
    // /usr/bin/kubectl is usually a link into the SDK, where its siblings live.
    const sdk = dirname(realpathSync(join(dir, 'kubectl')));
    for (const entry of readdirSync(sdk)) {
      const minor = /^kubectl\.1\.(\d+)$/.exec(entry)?.[1];
      if (minor) candidates.push({ path: join(sdk, entry), minor: Number(minor) });
    }
    candidates.push({ path: join(dir, 'kubectl'), minor: -1 });
  }
  candidates.sort((a, b) => b.minor - a.minor);
  return candidates[0]?.path;
}
