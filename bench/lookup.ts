/**
 * The cost of one Service look-up through the real ServiceDirectory (src/cluster/services.ts) and
 * the real @kubernetes/client-node: from the warm watch-fed cache, and as a live GET against the
 * local API server (which runs in the orchestrator, so this process measures only the client side).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createKubernetesServiceDirectory } from '../src/cluster/services.js';
import { isEntry, percentile } from './stats.js';

export interface LookupJob {
  apiServerUrl: string;
  namespace: string;
  name: string;
  cachedLookups: number;
  liveLookups: number;
}

export interface LookupTiming {
  lookups: number;
  /** Microseconds per look-up. */
  p50: number;
  p99: number;
  mean: number;
}

export interface LookupResult {
  cached: LookupTiming;
  live: LookupTiming;
}

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server, skipTLSVerify: true }],
    users: [{ name: 'sts-guard', token: 'bench-token' }],
    contexts: [{ name: 'local', cluster: 'local', user: 'sts-guard' }],
    currentContext: 'local',
  });
  return kc;
}

async function time(lookups: number, lookup: () => Promise<{ outcome: string }>): Promise<LookupTiming> {
  // Warm the code path (and, for live GETs, the keep-alive connection) before timing it.
  for (let i = 0; i < Math.min(200, lookups); i++) await lookup();
  const samples = new Float64Array(lookups);
  let total = 0;
  for (let i = 0; i < lookups; i++) {
    const started = performance.now();
    const found = await lookup();
    const elapsed = performance.now() - started;
    if (found.outcome !== 'found') throw new Error(`look-up ended ${found.outcome}, not found`);
    samples[i] = elapsed * 1000;
    total += elapsed * 1000;
  }
  samples.sort();
  return { lookups, p50: percentile(samples, 50), p99: percentile(samples, 99), mean: total / lookups };
}

export async function measureLookups(job: LookupJob): Promise<LookupResult> {
  const log = pino({ level: 'silent' });
  const options = { timeoutMs: 1500, log, kubeConfig: kubeConfig(job.apiServerUrl) };
  const withCache = createKubernetesServiceDirectory({ ...options, cache: true });
  const live = createKubernetesServiceDirectory({ ...options, cache: false });
  try {
    await withCache.lookup(job.namespace, job.name); // loads the client and starts the informer
    const deadline = performance.now() + 10_000;
    while (!withCache.cacheWarm()) {
      if (performance.now() > deadline) throw new Error('the Service cache did not warm within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    return {
      cached: await time(job.cachedLookups, () => withCache.lookup(job.namespace, job.name)),
      live: await time(job.liveLookups, () => live.lookup(job.namespace, job.name)),
    };
  } finally {
    withCache.close();
    live.close();
  }
}

if (isEntry(import.meta.url) && process.send) {
  process.once('message', (job: LookupJob) => {
    measureLookups(job).then(
      (result) => process.send!({ result }, () => process.exit(0)),
      (error: unknown) =>
        process.send!({ error: error instanceof Error ? error.message : String(error) }, () =>
          process.exit(1),
        ),
    );
  });
}
