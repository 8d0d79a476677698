import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/** The repository's root directory: every file a test reads, runs or renders is found from here. */
export const repoRoot = resolve(import.meta.dirname, '../..');

/** A path given relative to the repository root (an absolute path is kept as it is). */
export const repoPath = (path: string) => resolve(repoRoot, path);

/** The newest modification time, in ms, of any file under `dir`. */
export async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

const mtimeOf = (path: string) =>
  stat(path).then(
    (s) => s.mtimeMs,
    () => 0,
  );

/**
 * Runs `npm run build` when `artifact` (a file under dist/) is missing or older than src/, so a
 * test or benchmark run on its own after an edit never runs stale code. `npm test` builds before
 * tap, so there this only compares times. `onBuild` hears that a build is starting.
 */
export async function ensureBuilt(artifact: string, onBuild?: (why: string) => void): Promise<void> {
  const built = await mtimeOf(artifact);
  if (built >= (await newestMtime(repoPath('src')))) return;
  onBuild?.(`${artifact} is missing or older than src/: running npm run build`);
  try {
    await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: repoRoot });
  } catch (error) {
    // tsc still emits when some file has a type error (the typecheck step reports it); a build
    // that produced nothing new is the failure.
    if ((await mtimeOf(artifact)) <= built) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`npm run build failed: ${stderr || stdout || error}`);
    }
  }
}
