/**
 * The cost of one Service look-up in process (bench/lookup.ts, forked onto the server core): the
 * real ServiceDirectory and client-node against the local API server, from the warm watch-fed
 * cache and as a live GET.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { LookupJob, LookupResult } from '../lookup.js';
import { log, plan } from '../plan.js';
import { type BenchEnvironment, pinProcess, REPO, SERVER_CORE } from '../servers.js';
import { NAMESPACE } from '../workloads.js';

export async function serviceLookups(env: BenchEnvironment): Promise<LookupResult> {
  log('Service look-up: warm cache vs live GET');
  // The client side on the server core; the local API server answers from this process's core.
  const child = fork(join(REPO, 'bench/lookup.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  pinProcess(child.pid!, SERVER_CORE);
  const job: LookupJob = {
    apiServerUrl: env.api.url,
    namespace: NAMESPACE,
    name: 'mongodb-headless',
    cachedLookups: plan.cachedLookups,
    liveLookups: plan.liveLookups,
  };
  child.send(job);
  const [message] = (await once(child, 'message')) as [{ result: LookupResult } | { error: string }];
  if ('error' in message) throw new Error(`look-up benchmark: ${message.error}`);
  return message.result;
}
