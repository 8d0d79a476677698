/**
 * The Git repository Argo CD syncs from: a local bare repository (file:// URL, as Argo CD's own e2e
 * suite uses) holding this repository's tree at the tested commit, and a working clone where the
 * stories make their commits (a policy-breaking change, its revert, an image bump).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../../support/repo.js';

const run = promisify(execFile);

const identity = [
  '-c',
  'user.name=sts-guard e2e',
  '-c',
  'user.email=e2e@sts-guard.invalid',
  '-c',
  'commit.gpgsign=false',
];

export async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('git', [...identity, ...args], { cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`git ${args.join(' ')} in ${cwd}: ${e.stderr || e.message}`);
  }
}

export interface LocalRepository {
  /** file:///…/sts-guard.git, what Argo CD clones. */
  url: string;
  bare: string;
  /** A working clone of `bare`, on branch main. */
  work: string;
  /** The commit under test (HEAD of this checkout). */
  tested: string;
  /** Uncommitted changes in this checkout, which the repository does not hold. */
  dirty: string[];
}

/** A bare repository with this checkout's HEAD as branch main, and a working clone of it. */
export async function createLocalRepository(dir: string): Promise<LocalRepository> {
  await mkdir(dir, { recursive: true });
  const bare = join(dir, 'sts-guard.git');
  const work = join(dir, 'work');
  await git(dir, ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  await git(repoRoot, ['push', '--quiet', bare, 'HEAD:refs/heads/main']);
  await git(dir, ['clone', '--quiet', bare, work]);
  const tested = await git(repoRoot, ['rev-parse', 'HEAD']);
  const status = await git(repoRoot, ['status', '--porcelain', '--', 'kustomize', 'deploy']);
  return { url: `file://${bare}`, bare, work, tested, dirty: status ? status.split('\n') : [] };
}

/** Edits files in the working clone, commits them and pushes main; returns the new commit. */
export async function commit(
  repo: LocalRepository,
  message: string,
  edits: Record<string, (text: string) => string>,
): Promise<string> {
  for (const [path, edit] of Object.entries(edits)) {
    const file = join(repo.work, path);
    const before = await readFile(file, 'utf8');
    const after = edit(before);
    if (after === before) throw new Error(`the edit for "${message}" left ${path} unchanged`);
    await writeFile(file, after);
  }
  await git(repo.work, ['commit', '--quiet', '-am', message]);
  await git(repo.work, ['push', '--quiet', 'origin', 'HEAD:main']);
  return git(repo.work, ['rev-parse', 'HEAD']);
}

/** `git revert` of `sha` in the working clone, pushed; returns the new commit. */
export async function revert(repo: LocalRepository, sha: string): Promise<string> {
  await git(repo.work, ['revert', '--no-edit', sha]);
  await git(repo.work, ['push', '--quiet', 'origin', 'HEAD:main']);
  return git(repo.work, ['rev-parse', 'HEAD']);
}

/** Puts main back at the tested commit (a force push), so each story starts from it. */
export async function resetToTested(repo: LocalRepository): Promise<void> {
  await git(repo.work, ['reset', '--quiet', '--hard', repo.tested]);
  await git(repo.work, ['push', '--quiet', '--force', 'origin', 'HEAD:main']);
}
