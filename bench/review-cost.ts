/**
 * The review path alone, several builds side by side in one process: JSON.parse of the body, the
 * build's own readAdmissionReview, its answer for the path (answerReview; validateReview or
 * mutateReview before the evaluation pipeline) with its Services answered
 * from memory (as the warm watch cache answers them), and admissionReviewJson of the answer. No
 * HTTP, TLS, Fastify or log line: what sts-guard's own code costs per review, so a change in it
 * shows up without the rest of the server's cost (and the machine's noise) around it. Builds run
 * in rounds, in rotating order, and each figure is the median of the rounds.
 *
 *   node --import tsx bench/review-cost.ts [--workload routing] [--rounds 7] [--reviews 20000] \
 *     [--layer review|app] [<dir>[:VAR=value,…]]…
 *
 * `--layer app` times the whole Fastify app instead (buildApp from the tree's src/server/app.ts,
 * through `app.inject()`, with main.ts's pino logger writing to /dev/null): the review path plus
 * routing, hooks, the log line and the metrics, still without HTTP parsing, TLS or sockets.
 *
 * Each <dir> is a source tree of sts-guard (this one when none is given; an older commit from
 * `git archive <commit> | tar -x -C <dir>`, with node_modules linked); `VAR=value` are settings
 * for that tree's loadConfig, e.g. `.:RULE_CLIENT_ROUTING=off` for this tree with a rule off.
 */
import { existsSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from './stats.js';
import { cpuWorkloads, headlessService, routingServices } from './workloads.js';

const option = (name: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const workloadId = option('workload') ?? 'routing';
const rounds = Number(option('rounds') ?? 7);
const reviews = Number(option('reviews') ?? 20_000);
const layer = option('layer') ?? 'review';
const specs = process.argv
  .slice(2)
  .filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
if (layer !== 'review' && layer !== 'app') throw new Error('--layer is review or app');

const workload = cpuWorkloads().find((w) => w.id === workloadId);
if (workload?.status !== 200) throw new Error(`no admitted CPU workload ${workloadId}`);

interface Review {
  request: { uid: string };
}
interface Result {
  response: { allowed: boolean; warnings?: string[] };
}
type Context = Record<string, unknown>;

/** One build's review path, loaded from its own source tree. */
interface Build {
  name: string;
  review(body: string): Promise<string>;
}

async function load(spec: string): Promise<Build> {
  const [dir = '.', settings = ''] = spec.split(':');
  const root = resolve(dir);
  const module = async <T>(path: string) => (await import(pathToFileURL(resolve(root, path)).href)) as T;
  type Handler = (request: unknown, ctx: Context) => Promise<Result> | Result;
  // Since the evaluation pipeline, src/admission/bindings.ts answers a review on a path; before it,
  // src/admission/review.ts had one function per webhook.
  const answer: (path: string, request: unknown, ctx: Context) => Promise<Result> | Result = existsSync(
    resolve(root, 'src/admission/bindings.ts'),
  )
    ? (
        await module<{
          answerReview(path: string, request: unknown, ctx: Context): Promise<Result> | Result;
        }>('src/admission/bindings.ts')
      ).answerReview
    : await (async () => {
        const review = await module<{ validateReview: Handler; mutateReview: Handler }>(
          'src/admission/review.ts',
        );
        return (path: string, request: unknown, ctx: Context) =>
          (path === '/validate' ? review.validateReview : review.mutateReview)(request, ctx);
      })();
  const { readAdmissionReview } = await module<{ readAdmissionReview(body: unknown): Review }>(
    'src/admission/parse.ts',
  );
  const { admissionReviewJson } = await module<{ admissionReviewJson(response: unknown): string }>(
    'src/admission/answer.ts',
  );
  const { loadConfig } = await module<{ loadConfig(env: Record<string, string>): { policy: unknown } }>(
    'src/config.ts',
  );
  const env = Object.fromEntries(
    settings ? settings.split(',').map((kv) => kv.split('=') as [string, string]) : [],
  );
  // The Services bench/servers.ts gives the local API server for the same workloads.
  const services = [headlessService(), ...routingServices()];
  // Every look-up answered at once, as the warm watch-fed cache does (older builds ignore list()).
  const context: Context = {
    settings: loadConfig(env).policy,
    services: {
      lookup: async (namespace: string, name: string) => {
        const service = services.find(
          (s) => s.metadata?.namespace === namespace && s.metadata?.name === name,
        );
        return service ? { outcome: 'found', service } : { outcome: 'not-found' };
      },
      list: async (namespace: string) => ({
        outcome: 'found',
        services: services.filter((s) => s.metadata?.namespace === namespace),
      }),
    },
    claims: { list: async () => ({ outcome: 'found', claims: [] }) },
  };
  if (layer === 'app') {
    const { buildApp } = await module<{
      buildApp(options: Context): Promise<{
        inject(request: object): Promise<{ statusCode: number; body: string }>;
        ready(): Promise<unknown>;
      }>;
    }>('src/server/app.ts');
    const { pino } = await import('pino');
    const config = loadConfig(env) as { policy: unknown; logLevel?: string; bodyLimitBytes?: number };
    // As the tree's main.ts makes it, writing where the bench sends servers' stdout: its own
    // batching destination since issue 21 (src/server/log-destination.ts), pino's before.
    const destination = existsSync(resolve(root, 'src/server/log-destination.ts'))
      ? (
          await module<{
            batchedDestination(options: object): { write(line: string): void };
          }>('src/server/log-destination.ts')
        ).batchedDestination({ fd: openSync('/dev/null', 'w'), minLength: 4096, flushIntervalMs: 250 })
      : pino.destination({ dest: '/dev/null', minLength: 4096, sync: true });
    const logger = pino({ level: config.logLevel ?? 'info', base: { service: 'sts-guard' } }, destination);
    const app = await buildApp({ ...context, bodyLimitBytes: config.bodyLimitBytes ?? 1048576, logger });
    await app.ready();
    return {
      name: spec,
      async review(body) {
        const answer = await app.inject({
          method: 'POST',
          url: workload!.path,
          headers: { 'content-type': 'application/json' },
          payload: body,
        });
        if (answer.statusCode !== 200) throw new Error(`${spec}: ${answer.statusCode} ${answer.body}`);
        return answer.body;
      },
    };
  }
  return {
    name: spec,
    async review(body) {
      const request = readAdmissionReview(JSON.parse(body)).request;
      const result = await answer(workload!.path, request, context);
      if (!result.response.allowed) throw new Error(`${spec} did not admit ${workload!.label}`);
      return admissionReviewJson(result.response);
    },
  };
}

const builds = await Promise.all((specs.length > 0 ? specs : ['.']).map(load));
const body = workload.body;
for (const build of builds) {
  const answer = JSON.parse(await build.review(body)) as Result;
  process.stdout.write(
    `${build.name}: admitted, ${answer.response.warnings?.length ?? 0} warning(s), ${(await build.review(body)).length} bytes answered\n`,
  );
}
const perReview: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.name, []]));
for (let round = -1; round < rounds; round++) {
  for (let i = 0; i < builds.length; i++) {
    const build = builds[(i + Math.max(round, 0)) % builds.length]!;
    const count = round < 0 ? reviews / 4 : reviews; // round -1 warms up every build
    const before = process.cpuUsage();
    for (let n = 0; n < count; n++) await build.review(body);
    const used = process.cpuUsage(before);
    if (round >= 0) perReview[build.name]!.push((used.user + used.system) / count);
  }
}
const first = builds[0]!.name;
process.stdout.write(
  `
${workload.label}: CPU µs per review (process.cpuUsage, user + system), median of ${rounds} rounds of ${reviews.toLocaleString('en-US')} [min–max]; ratio: median of the per-round ratios to ${first}\n`,
);
for (const build of builds) {
  const values = perReview[build.name]!;
  const ratios = values.map((v, i) => v / perReview[first]![i]!);
  process.stdout.write(
    `  ${build.name.padEnd(40)} ${median(values).toFixed(1).padStart(7)} [${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)}]  ${median(ratios).toFixed(2)}×\n`,
  );
}
