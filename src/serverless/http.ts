import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { unsupportedRuntime } from '../server/runtime.js';
import { closeGracefully, createWebhook } from '../server/webhook.js';

/**
 * `node dist/bundle/http.mjs`: the webhook over plain HTTP on PORT, for platforms whose ingress
 * terminates TLS in front of the container (Knative, deploy/serverless/knative/). Set
 * SERVICE_CACHE=off when instances scale to zero: a new instance then answers with a live GET
 * instead of first listing every Service in the cluster.
 */
async function main() {
  const config = loadConfig();
  const log = pino({ level: config.logLevel, base: { service: 'sts-guard', runtime: 'http' } });
  const runtime = unsupportedRuntime(process.version);
  if (runtime) log.warn({ node: process.version }, runtime);
  const webhook = await createWebhook(config, log);
  closeGracefully(webhook, config, log);
  await webhook.app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  console.error(`sts-guard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
