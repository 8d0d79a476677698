import { readFile } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { batchedDestination } from './log-destination.js';
import { unsupportedRuntime } from './runtime.js';
import { loadServingCertificate, TLS_DEFAULTS, watchCertificate } from './tls.js';
import { closeGracefully, createWebhook } from './webhook.js';

/** `npm start`: the webhook over HTTPS, with a development certificate when none is configured. */
async function main() {
  const config = loadConfig();
  // One line per review: written in batches of up to 4 KB, not one write(2) per line (bench/README.md),
  // and at least every 250 ms so a quiet webhook's lines still show up promptly in `kubectl logs`.
  // The rest is written on exit; a SIGKILL or OOM kill can lose the last quarter second.
  const log = pino(
    { level: config.logLevel, base: { service: 'sts-guard' } },
    batchedDestination({ fd: 1, minLength: 4096, flushIntervalMs: 250 }),
  );
  const runtime = unsupportedRuntime(process.version);
  if (runtime) log.warn({ node: process.version }, runtime);
  const certificate = await loadServingCertificate(config.tls);
  if (certificate.generated) {
    log.warn(
      { certFile: certificate.certFile, keyFile: certificate.keyFile },
      'TLS_CERT_FILE/TLS_KEY_FILE not set: serving a self-signed development certificate (trust it with curl --cacert)',
    );
  }
  const clientCa = config.tls.clientCaFile ? await readFile(config.tls.clientCaFile, 'utf8') : undefined;

  const webhook = await createWebhook(config, log, {
    https: {
      key: certificate.key,
      cert: certificate.cert,
      // Optional mutual TLS: reviews only from the API server's client certificate; probes and
      // /metrics stay reachable without one (see AppOptions.https.clientCa).
      ...(clientCa ? { clientCa } : {}),
    },
  });
  const { app } = webhook;

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

  closeGracefully(webhook, config, log, stopWatching);
  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  // Configuration and certificate errors end here: say what is wrong and exit non-zero.
  console.error(`sts-guard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
