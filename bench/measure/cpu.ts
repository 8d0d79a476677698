/**
 * CPU per review: for each workload and server, a fixed number of reviews as fast as the server
 * answers them, and the server process's user + system CPU time over them ÷ reviews answered.
 * Rounds are interleaved (every workload on every server, then again) and the server order
 * rotates, so the machine's drift lands on all three alike; one discarded round warms up first.
 */
import { checked, type LoadGenerator } from '../load-generator.js';
import { log, plan, smoke } from '../plan.js';
import { type ServerProcess, withCpu } from '../servers.js';
import type { CpuRow } from '../table.js';
import type { CpuWorkload } from '../workloads.js';
import type { Session } from './session.js';

export async function cpuPerReview(
  load: LoadGenerator,
  cpu: CpuWorkload[],
  session: Session,
): Promise<CpuRow<CpuWorkload>[]> {
  const servers: Record<'sts-guard' | 'fastify' | 'baseline', ServerProcess> & { compare?: ServerProcess } = {
    'sts-guard': session.stsGuard,
    fastify: session.fastify,
    baseline: session.baseline,
    ...(session.compare ? { compare: session.compare } : {}),
  };
  const order = servers.compare
    ? (['sts-guard', 'fastify', 'baseline', 'compare'] as const)
    : (['sts-guard', 'fastify', 'baseline'] as const);
  const rows: CpuRow<CpuWorkload>[] = cpu.map((workload) => ({
    workload,
    rounds: { 'sts-guard': [], fastify: [], baseline: [], ...(servers.compare ? { compare: [] } : {}) },
    rates: { 'sts-guard': [], fastify: [], baseline: [], ...(servers.compare ? { compare: [] } : {}) },
  }));
  for (let round = smoke ? 0 : -1; round < plan.cpuRounds; round++) {
    log(
      round < 0 ? 'CPU per review: warm-up round' : `CPU per review: round ${round + 1} of ${plan.cpuRounds}`,
    );
    for (const row of rows) {
      const w = row.workload;
      for (let i = 0; i < order.length; i++) {
        const kind = order[(i + Math.max(0, round)) % order.length]!;
        const server = servers[kind]!;
        const amount = Math.ceil(plan.cpuReviews * (w.share ?? 1) * (round < 0 ? 0.2 : 1));
        const run = await withCpu(server, () =>
          load.run({
            kind: 'amount',
            origin: server.origin,
            requests: [{ path: w.path, body: w.body }],
            connections: plan.connections,
            amount,
            status: w.status,
          }),
        );
        checked(`CPU per review, ${kind} ${w.label}`, run.result);
        if (round >= 0) {
          row.rounds[kind]!.push((run.cpuSeconds / run.result.completed) * 1e6);
          row.rates![kind]!.push(run.result.reviewsPerSec);
        }
      }
    }
  }
  return rows;
}
