/**
 * Latency below saturation: an open loop at a fixed rate (one review every millisecond whatever
 * the answers do, as the API server's writes arrive), the bodies in turn, for the baseline and for
 * sts-guard's /mutate and /validate.
 */
import type { LatencyResult } from '../load.js';
import { checked, type LoadGenerator, on } from '../load-generator.js';
import { log, plan } from '../plan.js';
import type { BenchEnvironment } from '../servers.js';
import type { Workload } from '../workloads.js';
import type { Session } from './session.js';

export type LatencyFigures = Record<'baseline' | '/mutate' | '/validate', LatencyResult>;

export async function latencyAtRate(
  env: BenchEnvironment,
  session: Session,
  load: LoadGenerator,
  list: Workload[],
): Promise<LatencyFigures> {
  const latency = {} as LatencyFigures;
  for (const [name, server, path] of [
    ['baseline', session.baseline, '/validate'],
    ['/mutate', session.stsGuard, '/mutate'],
    ['/validate', session.stsGuard, '/validate'],
  ] as const) {
    log(`latency at ${plan.ratePerSec} reviews/s: ${name}`);
    latency[name] = checked(
      `latency ${name}`,
      await load.run({
        kind: 'paced',
        origin: server.origin,
        ca: env.ca,
        requests: on(path, list),
        ratePerSec: plan.ratePerSec,
        durationSec: plan.pacedSec,
      }),
    );
  }
  return latency;
}
