import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { createKubernetesServiceDirectory } from '../cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../cluster/statefulsets.js';
import { loadConfig } from '../config.js';
import { buildApp } from '../server/app.js';

/**
 * `node dist/serverless/http.js`: the webhook over plain HTTP on PORT, for platforms whose ingress
 * terminates TLS in front of the container (Knative, deploy/serverless/knative/). Set
 * SERVICE_CACHE=off when instances scale to zero: a new instance then answers with a live GET
 * instead of first listing every Service in the cluster.
 */
async function main() {
  const config = loadConfig();
  const log = pino({ level: config.logLevel, base: { service: 'sts-guard', runtime: 'http' } });
  const services = createKubernetesServiceDirectory({ ...config.lookup, log });
  const statefulSets = createKubernetesStatefulSetDirectory({ timeoutMs: config.lookup.timeoutMs, log });
  const [app] = await Promise.all([
    buildApp({
      settings: config.policy,
      services,
      statefulSets,
      bodyLimitBytes: config.bodyLimitBytes,
      logger: log,
    }),
    // Before listening, not on the first look-up: the instance is not Ready (and gets no review)
    // until it listens, and loading the client must not eat into a look-up's budget.
    import('@kubernetes/client-node'),
  ]);

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an unexpected error');
    else log.info({ signal }, 'shutting down: not ready, finishing in-flight reviews');
    app.startDraining();
    services.close();
    await app.close();
  });

  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  console.error(`sts-guard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
