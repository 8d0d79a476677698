import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(repoRoot, 'bin/sts-guard.js');
const compiledEntry = join(repoRoot, 'dist/cli/main.js');

async function newestSourceMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? await newestSourceMtime(path) : (await stat(path)).mtimeMs;
    newest = Math.max(newest, mtime);
  }
  return newest;
}

/**
 * The CLI runs from dist/ (as the published package does). `npm test` builds first; a plain
 * `npx tap test/cli/...` after editing src/ rebuilds here, so no test runs stale code.
 */
export async function ensureBuilt(): Promise<void> {
  const built = await stat(compiledEntry).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built >= (await newestSourceMtime(join(repoRoot, 'src')))) return;
  try {
    await promisify(execFile)(
      process.execPath,
      [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      { cwd: repoRoot },
    );
  } catch (error) {
    // tsc still emits when some file has a type error; that is the typecheck step's to report.
    const rebuilt = await stat(compiledEntry).then(
      (s) => s.mtimeMs > built,
      () => false,
    );
    if (!rebuilt) throw new Error(`npm run build failed: ${(error as { stdout?: string }).stdout ?? error}`);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Settings a developer's shell might carry that would change the verdicts under test, and tap's
 * own (its NODE_OPTIONS loader would make every child a traced, slower process than a user's).
 */
const INHERITED_ENV_TO_DROP =
  /^(RULE_|LOOKUP_|STORAGE_|CLUSTER_DOMAIN$|KUBECONFIG$|NODE_OPTIONS$|TAP|_TAPJS)/;

/** `sts-guard <args>` as a user runs it: a child process, optionally with stdin piped in. */
export function runCli(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !INHERITED_ENV_TO_DROP.test(k)));
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export const tempDir = () => mkdtemp(join(tmpdir(), 'sts-guard-cli-'));

/** Multi-document YAML, as `kubectl get -o yaml` or a hand-written manifest file has it. */
export const yamlDocuments = (...objects: unknown[]) => objects.map((o) => stringify(o)).join('---\n');

export async function writeManifest(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}
