import { STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { InvalidObjectError, type ReviewContext } from '../admission/review.js';
import type { Config } from '../config.js';
import { admissionPlugin } from './plugins/admission.js';
import { healthPlugin } from './plugins/health.js';
import { TLS_DEFAULTS } from './tls.js';

export interface AppOptions extends ReviewContext {
  bodyLimitBytes: Config['bodyLimitBytes'];
  /** Serve HTTPS with this key pair; omit for plain HTTP behind a TLS-terminating front (serverless). */
  https?: { key: string; cert: string; ca?: string; requestCert?: boolean; rejectUnauthorized?: boolean };
  /** A pino logger, or pino options; defaults to info-level JSON on stdout. */
  logger?: Logger | { level: string };
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
    return503OnClosing: true,
  };
  const logging =
    options.logger && 'child' in options.logger
      ? { loggerInstance: options.logger as FastifyBaseLogger }
      : { logger: options.logger ?? { level: 'info' } };
  // Fastify types an HTTPS instance apart from an HTTP one; routes and hooks are the same for both.
  const app = (options.https
    ? Fastify<HttpsServer>({ ...base, ...logging, https: { ...TLS_DEFAULTS, ...options.https } })
    : Fastify({ ...base, ...logging })) as unknown as FastifyInstance;

  app.setErrorHandler<FastifyError>((error, request, reply) => {
    if (error instanceof InvalidObjectError) {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: error.message });
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'review failed');
    return reply.code(status).send({
      statusCode: status,
      error: STATUS_CODES[status] ?? 'Error',
      message: error.message,
    });
  });

  await app.register(healthPlugin);
  await app.register(admissionPlugin, { settings: options.settings, services: options.services });
  return app;
}
