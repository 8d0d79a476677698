/**
 * The orchestrator's side of the load generator (load.ts): one forked process on the client core,
 * sent jobs over IPC, each answered with its figures.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { LatencyResult, LoadJob, LoadReply, LoadRequest, SaturationResult } from './load.js';
import { CLIENT_CORE, pinProcess, REPO } from './servers.js';
import type { Workload } from './workloads.js';

/** The load generator process, with a promise per job. */
export class LoadGenerator {
  private child: ChildProcess;
  private nextId = 0;
  private pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();

  constructor() {
    this.child = fork(join(REPO, 'bench/load.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    pinProcess(this.child.pid!, CLIENT_CORE);
    this.child.on('message', (reply: LoadReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if ('error' in reply) waiter?.reject(new Error(`load generator: ${reply.error}`));
      else waiter?.resolve(reply.result as never);
    });
    this.child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`load generator exited (${code})`));
      this.pending.clear();
    });
  }

  run(job: Extract<LoadJob, { kind: 'paced' }>): Promise<LatencyResult>;
  run(job: Exclude<LoadJob, { kind: 'paced' }>): Promise<SaturationResult>;
  run(job: LoadJob): Promise<LatencyResult | SaturationResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: never) => void, reject });
      this.child.send({ id, job });
    });
  }

  close() {
    this.child.disconnect();
  }
}

/** Fails the run when any review in a load run went wrong: a figure over failures means nothing. */
export function checked<T extends { failures: number }>(what: string, result: T): T {
  if (result.failures > 0)
    throw new Error(`${what}: ${result.failures} reviews failed (non-2xx, error or timeout)`);
  return result;
}

/** Each workload's body, sent to `path`. */
export const on = (path: '/mutate' | '/validate', list: Workload[]): LoadRequest[] =>
  list.map((w) => ({ path, body: w.body }));
