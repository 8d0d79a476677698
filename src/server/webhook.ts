import { setTimeout } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createKubernetesConfigMapDirectory } from '../cluster/configmaps.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../cluster/statefulsets.js';
import type { Config } from '../config.js';
import { watchExceptionList } from '../exceptions/source.js';
import { type AppOptions, buildApp } from './app.js';

export interface Webhook {
  app: FastifyInstance;
  /** Stops the Service watch; call before `app.close()`. */
  stopLookups(): void;
}

/**
 * The app wired to its Kubernetes look-ups, as every entry point (HTTPS server, plain-HTTP
 * container, Lambda) runs it. @kubernetes/client-node, most of a cold start, is loaded at start-up
 * only with the Service cache on; its loading never counts against a look-up's budget.
 */
export async function createWebhook(
  config: Config,
  log: Logger,
  options: { cache?: boolean; https?: AppOptions['https'] } = {},
): Promise<Webhook> {
  const services = createKubernetesServiceDirectory({
    timeoutMs: config.lookup.timeoutMs,
    cache: options.cache ?? config.lookup.cache,
    log,
  });
  // StatefulSets are always read live (scale reviews, Service deletions).
  const statefulSets = createKubernetesStatefulSetDirectory({ timeoutMs: config.lookup.timeoutMs, log });
  // ConfigMaps are read live, and only for servers started with a config file in one.
  const configMaps = createKubernetesConfigMapDirectory({ timeoutMs: config.lookup.timeoutMs, log });
  const exceptions = config.exceptionsFile ? watchExceptionList(config.exceptionsFile, log) : undefined;
  await exceptions?.ready;
  // Claims are listed live, only at the CREATE of a MongoDB StatefulSet that gets the bootstrap hook.
  const claims = createKubernetesPersistentVolumeClaimDirectory({ timeoutMs: config.lookup.timeoutMs, log });
  const app = await buildApp({
    settings: config.policy,
    services,
    statefulSets,
    configMaps,
    exceptions,
    exceptionStatus: exceptions,
    claims,
    bodyLimitBytes: config.bodyLimitBytes,
    logger: log,
    ...(options.https ? { https: options.https } : {}),
  });
  // A long-lived instance with the cache on fills it now; otherwise (serverless) the client is
  // loaded by the first review that needs a look-up, so a cold start does not wait for it.
  if (options.cache ?? config.lookup.cache) services.start();
  return {
    app,
    stopLookups: () => {
      services.close();
      exceptions?.close();
    },
  };
}

/**
 * On SIGTERM/SIGINT (or a fatal error): report not-ready, keep answering for SHUTDOWN_DRAIN_MS so
 * load balancers and kept-alive clients move elsewhere, then close and finish in-flight reviews.
 */
export function closeGracefully(webhook: Webhook, config: Config, log: Logger, beforeClose = () => {}): void {
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an unexpected error');
    else
      log.info(
        { signal, drainMs: config.shutdownDrainMs },
        'shutting down: not ready, finishing in-flight reviews',
      );
    webhook.app.startDraining();
    // In Kubernetes the preStop sleep has already let endpoints catch up; this covers the rest.
    if (!err && config.shutdownDrainMs > 0) await setTimeout(config.shutdownDrainMs);
    beforeClose();
    webhook.stopLookups();
    await webhook.app.close();
  });
}
