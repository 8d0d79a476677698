import type { Server as HttpsServer } from 'node:https';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import {
  InvalidObjectError,
  mutateReview,
  type ReviewContext,
  type ReviewResult,
  validateReview,
} from '../admission/review.js';
import { admissionReviewRequestSchema, admissionReviewResponseSchema } from '../admission/schema.js';
import { ADMISSION_API_VERSION, type AdmissionRequest, type AdmissionReview } from '../admission/types.js';
import type { Config } from '../config.js';
import { TLS_DEFAULTS } from './tls.js';

export interface AppOptions extends ReviewContext {
  bodyLimitBytes: Config['bodyLimitBytes'];
  /** Serve HTTPS with this key pair; omit for plain HTTP behind a TLS-terminating front (serverless). */
  https?: { key: string; cert: string; ca?: string; requestCert?: boolean };
  /** A pino logger, or pino options; defaults to info-level JSON on stdout. */
  logger?: Logger | { level: string };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Marks the instance not ready (readyz 503) while it drains before closing. */
    startDraining(): void;
  }
}

type Handler = (request: AdmissionRequest) => Promise<ReviewResult> | ReviewResult;

/**
 * The webhook as a Fastify instance that has not started listening: tests use `inject()` or
 * `listen()`, `main.ts` listens over HTTPS, and the serverless adapter wraps it as a function.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const base = {
    bodyLimit: options.bodyLimitBytes,
    // One log line per review (below) is worth more than Fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: false } },
  };
  const logging =
    options.logger && 'child' in options.logger
      ? { loggerInstance: options.logger as FastifyBaseLogger }
      : { logger: options.logger ?? { level: 'info' } };
  // Fastify types an HTTPS instance apart from an HTTP one; routes and hooks are the same for both.
  const app = (options.https
    ? Fastify<HttpsServer>({ ...base, ...logging, https: { ...TLS_DEFAULTS, ...options.https } })
    : Fastify({ ...base, ...logging })) as unknown as FastifyInstance;

  let draining = false;
  app.decorate('startDraining', () => {
    draining = true;
  });

  app.setErrorHandler<FastifyError>((error, request, reply) => {
    if (error instanceof InvalidObjectError) {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: error.message });
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'review failed');
    return reply.code(status).send({
      statusCode: status,
      error: status === 413 ? 'Payload Too Large' : status >= 500 ? 'Internal Server Error' : 'Bad Request',
      message: error.message,
    });
  });

  const route = (path: '/validate' | '/mutate', handler: Handler) =>
    app.post<{ Body: AdmissionReview & { request: AdmissionRequest } }>(
      path,
      { schema: { body: admissionReviewRequestSchema, response: { 200: admissionReviewResponseSchema } } },
      async (req) => {
        const started = process.hrtime.bigint();
        const review = req.body.request;
        const result = await handler(review);
        req.log.info(
          {
            webhook: path.slice(1),
            uid: review.uid,
            kind: `${review.kind.group || 'core'}/${review.kind.version}/${review.kind.kind}`,
            subResource: review.subResource,
            object: `${review.namespace ?? ''}/${review.name || objectName(review.object) || objectName(review.oldObject)}`,
            operation: review.operation,
            dryRun: review.dryRun ?? false,
            verdict: result.verdict,
            rules: result.rules.length > 0 ? result.rules : undefined,
            lookup: result.lookup,
            warnings: result.response.warnings?.length ?? 0,
            durationMs: Number(process.hrtime.bigint() - started) / 1e6,
          },
          'admission review',
        );
        return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: result.response };
      },
    );

  route('/validate', (request) => validateReview(request, options));
  route('/mutate', (request) => mutateReview(request, options));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready' },
  );
  return app;
}

function objectName(object: unknown): string {
  const name = (object as { metadata?: { name?: unknown } } | null | undefined)?.metadata?.name;
  return typeof name === 'string' ? name : '';
}
