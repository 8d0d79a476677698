import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A loopback port that was free a moment ago, for a server that cannot report the one it got. */
export async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

/** Whether process `pid` is still there (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends `signal` to `target` (a pid, or a negated pid for the whole process group of a child started
 * with `detached: true`), SIGKILL after `graceMs`, and resolves once nothing of it is left.
 */
export async function stopProcess(
  target: number,
  options: { graceMs: number; signal?: NodeJS.Signals; pollMs?: number },
): Promise<void> {
  const { graceMs, signal = 'SIGTERM', pollMs = 50 } = options;
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(target, sig);
    } catch {
      // Gone between the check and the signal.
    }
  };
  if (!processAlive(target)) return;
  send(signal);
  const deadline = Date.now() + graceMs;
  while (processAlive(target) && Date.now() < deadline) await sleep(pollMs);
  if (processAlive(target)) send('SIGKILL');
  while (processAlive(target)) await sleep(pollMs);
}

/** The last `lines` lines of a child process's log, for an error that says why it stopped. */
export async function logTail(path: string, lines = 20): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '(no log)');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to its end, stdin given (or closed), and returns its exit code and output. */
export function runProcess(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string },
): Promise<ProcessResult> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
