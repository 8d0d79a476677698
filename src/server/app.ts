import { STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ReviewContext } from '../pipeline/ports.js';
import { type MetricsOptions, metricsPlugin } from './metrics.js';
import { admissionPlugin } from './plugins/admission.js';
import { healthPlugin } from './plugins/health.js';
import { TLS_DEFAULTS } from './tls.js';

export interface AppOptions extends ReviewContext {
  bodyLimitBytes: Config['bodyLimitBytes'];
  /** Serve HTTPS with this key pair; omit for plain HTTP behind a TLS-terminating front (serverless). */
  https?: {
    key: string;
    cert: string;
    ca?: string;
    requestCert?: boolean;
    rejectUnauthorized?: boolean;
    /**
     * Require a client certificate signed by this CA (PEM) on /validate and /mutate (401 without
     * one). Checked per route, not in the handshake, so kubelet's HTTPS probes and Prometheus,
     * which present no client certificate, still reach /healthz, /readyz and /metrics.
     */
    clientCa?: string;
  };
  /** The exception list's load state for /metrics (the watched file's source implements it). */
  exceptionStatus?: MetricsOptions['exceptions'];
  /** A pino logger, or pino options; defaults to info-level JSON on stdout. */
  logger?: Logger | { level: string };
}

function noRouteSchemas(): never {
  throw new Error('sts-guard routes take no Fastify schema: validate with src/generated/ validators');
}

/**
 * The webhook as a Fastify instance that has not started listening: tests use `inject()` or
 * `listen()`, `main.ts` listens over HTTPS, and the serverless adapter wraps it as a function.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const base = {
    bodyLimit: options.bodyLimitBytes,
    // One log line per review (plugins/admission.ts) is worth more than Fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    // While closing, a request on a kept-alive connection is still answered (with Connection:
    // close) rather than refused with 503: the API server applies failurePolicy to a 503.
    return503OnClosing: false,
    // No route has a Fastify schema (bodies are checked by validators compiled ahead of time,
    // src/generated/), so Fastify's own Ajv and fast-json-stringify compilers are never loaded:
    // loading and compiling them was a large part of a cold start (bench/README.md).
    schemaController: {
      compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas },
    },
  };
  const logging =
    options.logger && 'child' in options.logger
      ? { loggerInstance: options.logger as FastifyBaseLogger }
      : { logger: options.logger ?? { level: 'info' } };
  const { clientCa, ...https } = options.https ?? { key: '', cert: '' };
  const clientVerification = clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {};
  // Fastify types an HTTPS instance apart from an HTTP one; routes and hooks are the same for both.
  const app = (options.https
    ? Fastify<HttpsServer>({
        ...base,
        ...logging,
        https: { ...TLS_DEFAULTS, ...https, ...clientVerification },
      })
    : Fastify({ ...base, ...logging })) as unknown as FastifyInstance;

  // Fastify's errors and MalformedReviewError carry their statusCode (400, 413, 415, …).
  app.setErrorHandler<FastifyError>((error, request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'review failed');
    return reply.code(status).send({
      statusCode: status,
      error: STATUS_CODES[status] ?? 'Error',
      message: error.message,
    });
  });

  await app.register(healthPlugin);
  await app.register(metricsPlugin, {
    certificate: options.https?.cert,
    exceptions: options.exceptionStatus,
  });
  // Reviews are counted by the metrics plugin, registered above: its decorators reach this child context.
  await app.register(admissionPlugin, {
    requireClientCertificate: Boolean(clientCa),
    settings: options.settings,
    services: options.services,
    statefulSets: options.statefulSets,
    configMaps: options.configMaps,
    exceptions: options.exceptions,
    claims: options.claims,
    clock: options.clock,
  });
  return app;
}
