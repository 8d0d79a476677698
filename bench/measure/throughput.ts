/**
 * Throughput at saturation: autocannon against each body and endpoint, baseline and sts-guard
 * interleaved per body so drift in the machine hits both alike; Fastify alone beside the
 * baseline as the reference (what the framework costs before sts-guard does anything).
 */
import type { SaturationResult } from '../load.js';
import { checked, type LoadGenerator, on } from '../load-generator.js';
import { log, plan } from '../plan.js';
import { type ServerProcess, withCpu } from '../servers.js';
import type { Workload } from '../workloads.js';
import type { Session } from './session.js';

export interface ThroughputFigure {
  path: string;
  workload: Workload;
  stsGuard: SaturationResult;
  baseline: SaturationResult;
  /** Share of one core the server used during the run. */
  stsGuardCpu: number;
  baselineCpu: number;
}

/** Fastify alone (bench/fastify-floor.mjs) against the baseline: what the framework costs. */
export interface ReferenceFigure {
  workload: Workload;
  reviewsPerSec: number;
  baselineReviewsPerSec: number;
}

export async function saturation(
  session: Session,
  load: LoadGenerator,
  list: Workload[],
): Promise<{ throughput: ThroughputFigure[]; reference: ReferenceFigure[] }> {
  const throughput: ThroughputFigure[] = [];
  const reference: ReferenceFigure[] = [];
  for (const w of list) {
    log(`saturation: ${w.label}`);
    const saturate = (server: ServerProcess, path: '/mutate' | '/validate') =>
      withCpu(server, () =>
        load.run({
          kind: 'saturate',
          origin: server.origin,
          requests: on(path, [w]),
          connections: plan.connections,
          durationSec: plan.saturateSec,
        }),
      );
    const base = await saturate(session.baseline, '/validate');
    checked(`baseline ${w.label}`, base.result);
    const framework = await saturate(session.fastify, '/validate');
    checked(`Fastify alone ${w.label}`, framework.result);
    reference.push({
      workload: w,
      reviewsPerSec: framework.result.reviewsPerSec,
      baselineReviewsPerSec: base.result.reviewsPerSec,
    });
    for (const path of ['/mutate', '/validate'] as const) {
      const run = await saturate(session.stsGuard, path);
      checked(`sts-guard ${path} ${w.label}`, run.result);
      throughput.push({
        path,
        workload: w,
        stsGuard: run.result,
        baseline: base.result,
        stsGuardCpu: run.cpu,
        baselineCpu: base.cpu,
      });
    }
  }
  return { throughput, reference };
}
