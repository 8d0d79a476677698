import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { describeApiError } from '../cluster/client.js';
import { createKubernetesConfigMapDirectory } from '../cluster/configmaps.js';
import { loadConfig } from '../config.js';
import { watchExceptionList } from '../exceptions/source.js';
import { unsupportedRuntime } from '../server/runtime.js';
import { loadAuditClient } from './client.js';
import { type AuditController, createAuditController } from './controller.js';
import { createClusterCaches } from './informers.js';
import { createLeaderElection } from './lease.js';
import { createAuditMetrics } from './metrics.js';
import { createReportWriter } from './writer.js';

/**
 * `node dist/bundle/audit.mjs`: the background audit, as deploy/audit runs it (its own Deployment
 * and ServiceAccount, two replicas, one Lease). Plain HTTP on AUDIT_PORT serves /metrics, /healthz
 * and /readyz: it answers no review, so it needs no serving certificate.
 */
async function main() {
  const config = loadConfig();
  const log = pino(
    { level: config.logLevel, base: { service: 'sts-guard-audit' } },
    pino.destination({ dest: 1, minLength: 4096, sync: true, periodicFlush: 250 }),
  );
  const runtime = unsupportedRuntime(process.version);
  if (runtime) log.warn({ node: process.version }, runtime);
  // In a pod its ServiceAccount; else KUBECONFIG or ~/.kube/config. Without one there is nothing to audit.
  const client = await loadAuditClient();
  const { kubeConfig } = client;
  const identity = config.audit.lease.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;

  const metrics = createAuditMetrics();
  let controller: AuditController | undefined;
  const exceptions = config.exceptionsFile
    ? watchExceptionList(config.exceptionsFile, log, 200, () =>
        controller?.requestFullScan('exceptions reloaded'),
      )
    : undefined;
  await exceptions?.ready;
  const { lease } = config.audit;
  controller = createAuditController({
    settings: config.policy,
    audit: config.audit,
    caches: createClusterCaches(client, log),
    configMaps: createKubernetesConfigMapDirectory({ timeoutMs: config.lookup.timeoutMs, log, kubeConfig }),
    exceptions,
    writer: createReportWriter({
      ...client,
      onError: (error, what) =>
        log.warn(
          {
            write: what,
            reason: describeApiError(
              error,
              10_000,
              'create, update, delete reports',
              "the audit ServiceAccount's",
            ),
          },
          'report write failed',
        ),
    }),
    election: createLeaderElection({
      ...client,
      namespace: lease.namespace,
      name: lease.name,
      identity,
      timing: {
        leaseDurationMs: lease.durationMs,
        renewDeadlineMs: lease.renewDeadlineMs,
        retryPeriodMs: lease.retryPeriodMs,
      },
      log,
    }),
    metrics,
    log,
  });
  const audit = controller;

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => {
          log.error({ err }, 'metrics failed');
          response.writeHead(500).end();
        },
      );
    } else if (path === '/healthz') {
      response.writeHead(200).end('ok\n');
    } else if (path === '/readyz') {
      const ready = audit.ready();
      response.writeHead(ready ? 200 : 503).end(ready ? 'ok\n' : 'caches not synced\n');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(config.audit.port, config.host, resolve));
  log.info(
    { port: config.audit.port, identity, lease: `${lease.namespace}/${lease.name}` },
    'sts-guard audit started',
  );
  audit.start();

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'audit shutting down after an unexpected error');
    else log.info({ signal }, 'audit shutting down: releasing the Lease');
    // Release first, so the other replica takes over at its next try instead of after the Lease expires.
    await audit.stop();
    exceptions?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // close-with-grace exits the process next: write out the last lines (the release) first.
    log.flush();
  });
}

main().catch((err: unknown) => {
  console.error(`sts-guard audit: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
