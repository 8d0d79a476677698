import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function onPath(binary: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      await access(join(dir, binary));
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** The command that renders a kustomization: `kustomize build` when on PATH, else `kubectl kustomize`. */
export async function kustomizeCommand(): Promise<[string, string[]]> {
  if (await onPath('kustomize')) return ['kustomize', ['build']];
  if (await onPath('kubectl')) return ['kubectl', ['kustomize']];
  throw new Error('neither kustomize nor kubectl is on PATH; install one to render kustomizations');
}

/** Renders the kustomization in `dir` to multi-document YAML; errors carry kustomize's own message. */
export async function renderKustomization(dir: string): Promise<string> {
  const [command, args] = await kustomizeCommand();
  try {
    const { stdout } = await run(command, [...args, dir], { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${command} ${args.join(' ')} ${dir} failed: ${stderr || (error as Error).message}`);
  }
}
