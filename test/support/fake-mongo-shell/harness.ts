// STAND-IN for mongod: part of the simulated replica set the real bootstrap hook runs against (no MongoDB server binary exists on these machines).
/**
 * Runs the real generated postStart script (`/bin/sh -c <script>`, the hook's own argv) in a
 * temp directory whose `bin/` comes first on PATH and holds fake `mongosh`/`mongo` (the bundled
 * shell.ts), a fake `hostname` printing the pod name, and a fake `sleep` that only records its
 * argument, so the script's two-minute wait loop runs in a moment without changing the script.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { readCluster, type ShellFlavour, type SimulatedCluster, writeCluster } from './cluster.js';

/** PATH entries after the fakes: enough for sh and coreutils, never a real mongosh/mongo. */
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';

let bundled: string | undefined;

/** shell.ts and what it imports, as one CommonJS file that runs with this very node. */
function fakeShellProgram(): string {
  if (bundled && existsSync(bundled)) return bundled;
  const dir = mkdtempSync(join(tmpdir(), 'sts-guard-fake-mongo-shell-'));
  const outfile = join(dir, 'shell.cjs');
  buildSync({
    entryPoints: [fileURLToPath(new URL('./shell.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    outfile,
    logLevel: 'error',
    // Under tap, child processes inherit a NODE_OPTIONS that loads its process-info hooks, which
    // would multiply the start-up time of each of the hundreds of fake shell runs; mongosh ignores it.
    banner: { js: `#!/usr/bin/env -S -u NODE_OPTIONS ${process.execPath}` },
  });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  bundled = outfile;
  return outfile;
}

export interface HookRun {
  /** The hook's exit status; kubelet kills and restarts the container when it is not 0. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Arguments of every `sleep` the sh part ran. */
  sleeps: string[];
}

export interface RunOptions {
  /** The pod whose container runs the hook, e.g. `mongodb-1`. */
  pod: string;
  /** What `hostname` prints; the pod name unless set (setHostnameAsFQDN makes it the FQDN). */
  hostname?: string;
  /** Replaces `/bin/sh` in the hook's argv, to run the same script under bash or dash. */
  interpreter?: string;
  /** How much of the script's in-shell `sleep(ms)` is really waited (default 0.005). */
  sleepScale?: number;
  /** Seconds each sh `sleep` really waits (default: none). */
  shSleepSeconds?: number;
}

export interface Sandbox {
  readonly dir: string;
  /** The simulated cluster as the fake shells left it. */
  cluster(): SimulatedCluster;
  /** Runs a postStart exec command (`['/bin/sh', '-c', script]`) as the container of `pod`. */
  run(command: string[], options: RunOptions): Promise<HookRun>;
  remove(): void;
}

/** A temp dir with the cluster file and a bin/ holding the fakes for `shells` only. */
export function sandbox(
  cluster: SimulatedCluster,
  shells: ShellFlavour[],
  options: { getent?: boolean } = {},
): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'sts-guard-bootstrap-'));
  const bin = join(dir, 'bin');
  const clusterFile = join(dir, 'cluster.json');
  writeCluster(clusterFile, cluster);
  mkdirSync(bin);
  const program = fakeShellProgram();
  for (const shell of shells) {
    copyFileSync(program, join(bin, shell));
    chmodSync(join(bin, shell), 0o755);
  }
  // The simulated DNS: the same program, invoked as getent.
  if (options.getent ?? true) {
    copyFileSync(program, join(bin, 'getent'));
    chmodSync(join(bin, 'getent'), 0o755);
  }
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script('hostname', 'printf "%s\\n" "$FAKE_HOSTNAME"');
  // Records its argument; waits FAKE_SH_SLEEP seconds when set (pacing for hooks that run at once).
  script(
    'sleep',
    'printf "%s\\n" "$*" >>"$FAKE_SLEEP_LOG"\nif [ -n "${FAKE_SH_SLEEP:-}" ]; then /bin/sleep "$FAKE_SH_SLEEP"; fi',
  );

  let runs = 0;
  return {
    dir,
    cluster: () => readCluster(clusterFile),
    remove: () => rmSync(dir, { recursive: true, force: true }),
    run(command, options) {
      const [interpreter, ...args] = command;
      if (!interpreter) throw new Error('empty exec command');
      const sleepLog = join(dir, `sleep-${++runs}.log`);
      const env = {
        PATH: `${bin}:${SYSTEM_PATH}`,
        FAKE_MONGO_CLUSTER: clusterFile,
        FAKE_POD_NAME: options.pod,
        FAKE_HOSTNAME: options.hostname ?? options.pod,
        FAKE_SLEEP_LOG: sleepLog,
        FAKE_MONGO_SLEEP_SCALE: String(options.sleepScale ?? 0.005),
        ...(options.shSleepSeconds ? { FAKE_SH_SLEEP: String(options.shSleepSeconds) } : {}),
      };
      return new Promise((resolve) => {
        execFile(
          options.interpreter ?? interpreter,
          args,
          { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout, stderr) => {
            const exitCode = error ? (typeof error.code === 'number' ? error.code : null) : 0;
            const sleeps = existsSync(sleepLog)
              ? readFileSync(sleepLog, 'utf8').split('\n').filter(Boolean)
              : [];
            resolve({ exitCode, stdout, stderr, sleeps });
          },
        );
      });
    },
  };
}
