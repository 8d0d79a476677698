import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type ProcessResult, runProcess } from '../support/processes.js';
import { ensureBuilt as ensureDistBuilt, repoPath, repoRoot } from '../support/repo.js';

const bin = repoPath('bin/sts-guard.js');

/**
 * The CLI runs from dist/ (as the published package does). `npm test` builds first; a plain
 * `npx tap test/cli/...` after editing src/ rebuilds here, so no test runs stale code.
 */
export const ensureBuilt = () => ensureDistBuilt(repoPath('dist/cli/main.js'));

export type CliResult = ProcessResult;

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
  return runProcess(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...env, ...options.env },
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
  });
}

export const tempDir = () => mkdtemp(join(tmpdir(), 'sts-guard-cli-'));

/** Multi-document YAML, as `kubectl get -o yaml` or a hand-written manifest file has it. */
export const yamlDocuments = (...objects: unknown[]) => objects.map((o) => stringify(o)).join('---\n');

/** A kubeconfig as a user writes one, for the API server at `server` (plain HTTP, a bearer token). */
export async function writeKubeconfig(path: string, server: string): Promise<string> {
  await writeFile(
    path,
    yamlDocuments({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'ci', user: { token: 'test-token' } }],
      contexts: [{ name: 'local', context: { cluster: 'local', user: 'ci' } }],
      'current-context': 'local',
    }),
  );
  return path;
}

export async function writeManifest(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}
