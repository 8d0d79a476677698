/** Memory: a fresh process per server, RSS read from /proc every rssReviews/rssSamples reviews. */
import { checked, type LoadGenerator } from '../load-generator.js';
import { log, plan, SERVER_OPTIONS } from '../plan.js';
import { type BenchEnvironment, rssBytes, type ServerKind, startServer } from '../servers.js';
import type { Workload } from '../workloads.js';

export interface RssFigure {
  /** [reviews answered so far, RSS bytes]; the first sample is after the first review. */
  samples: Array<[number, number]>;
}

export async function rss(
  kind: ServerKind,
  env: BenchEnvironment,
  load: LoadGenerator,
  list: Workload[],
): Promise<RssFigure> {
  log(`RSS over ${plan.rssReviews} reviews: ${kind}`);
  const server = await startServer(kind, env, SERVER_OPTIONS, { path: '/mutate', body: list[0]!.body });
  try {
    // Each StatefulSet write goes to both webhooks: alternate them over the three bodies.
    const requests = list.flatMap((w) => [
      { path: '/mutate', body: w.body },
      { path: '/validate', body: w.body },
    ]);
    const samples: Array<[number, number]> = [[1, rssBytes(server.pid)]];
    const chunk = Math.round(plan.rssReviews / plan.rssSamples);
    for (let done = 0; done < plan.rssReviews; done += chunk) {
      checked(
        `RSS ${kind}`,
        await load.run({
          kind: 'amount',
          origin: server.origin,
          requests,
          connections: plan.connections,
          amount: chunk,
        }),
      );
      samples.push([done + chunk, rssBytes(server.pid)]);
    }
    return { samples };
  } finally {
    await server.stop();
  }
}
