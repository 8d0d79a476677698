import { readFile } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { setTimeout } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { createKubernetesServiceDirectory } from '../cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../cluster/statefulsets.js';
import { loadConfig } from '../config.js';
import { buildApp } from './app.js';
import { loadServingCertificate, TLS_DEFAULTS, watchCertificate } from './tls.js';

/** `npm start`: the webhook over HTTPS, with a development certificate when none is configured. */
async function main() {
  const config = loadConfig();
  const log = pino({ level: config.logLevel, base: { service: 'sts-guard' } });
  const certificate = await loadServingCertificate(config.tls);
  if (certificate.generated) {
    log.warn(
      { certFile: certificate.certFile, keyFile: certificate.keyFile },
      'TLS_CERT_FILE/TLS_KEY_FILE not set: serving a self-signed development certificate (trust it with curl --cacert)',
    );
  }
  const clientCa = config.tls.clientCaFile ? await readFile(config.tls.clientCaFile, 'utf8') : undefined;

  // The look-ups import @kubernetes/client-node on first use (serverless cold starts skip it); a
  // long-running server loads it now, so the first review's look-up budget is not spent loading it.
  await import('@kubernetes/client-node');
  const services = createKubernetesServiceDirectory({ ...config.lookup, log });
  const statefulSets = createKubernetesStatefulSetDirectory({ timeoutMs: config.lookup.timeoutMs, log });
  const app = await buildApp({
    settings: config.policy,
    services,
    statefulSets,
    bodyLimitBytes: config.bodyLimitBytes,
    logger: log,
    https: {
      key: certificate.key,
      cert: certificate.cert,
      // Optional mutual TLS: reviews only from the API server's client certificate; probes and
      // /metrics stay reachable without one (see AppOptions.https.clientCa).
      ...(clientCa ? { clientCa } : {}),
    },
  });

  const stopWatching = certificate.generated
    ? () => undefined
    : watchCertificate(
        certificate,
        (pair) => {
          (app.server as unknown as HttpsServer).setSecureContext({
            ...TLS_DEFAULTS,
            ...pair,
            ...(clientCa ? { ca: clientCa } : {}),
          });
          app.recordServingCertificate(pair.cert);
        },
        log,
      );

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an unexpected error');
    else
      log.info(
        { signal, drainMs: config.shutdownDrainMs },
        'shutting down: not ready, finishing in-flight reviews',
      );
    app.startDraining();
    // Keep answering while load balancers see readyz 503 and kept-alive clients reconnect elsewhere;
    // in Kubernetes the preStop sleep has already let endpoints catch up.
    if (!err && config.shutdownDrainMs > 0) await setTimeout(config.shutdownDrainMs);
    stopWatching();
    services.close();
    await app.close();
  });

  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  // Configuration and certificate errors end here: say what is wrong and exit non-zero.
  console.error(`sts-guard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
