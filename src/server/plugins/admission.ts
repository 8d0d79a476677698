import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { admissionReviewJson } from '../../admission/answer.js';
import { answerReview, WEBHOOK_PATHS, type WebhookPath } from '../../admission/bindings.js';
import { MalformedReviewError, readAdmissionReview } from '../../admission/parse.js';
import type { ReviewContext } from '../../pipeline/ports.js';

export interface AdmissionPluginOptions extends ReviewContext {
  /**
   * Require a client certificate signed by the server's client CA on these routes (401 without
   * one). The handshake asks for one but does not insist, so probes and /metrics still work.
   */
  requireClientCertificate?: boolean;
}

function objectName(object: unknown): string {
  const name = (object as { metadata?: { name?: unknown } } | null | undefined)?.metadata?.name;
  return typeof name === 'string' ? name : '';
}

/**
 * POST /validate and POST /mutate: AdmissionReview v1 in, AdmissionReview v1 out. An encapsulated
 * plugin (registered without fastify-plugin): its JSON parser and its client-certificate check
 * apply to these two routes only; any other route of the app keeps Fastify's defaults.
 */
export async function admissionPlugin(app: FastifyInstance, options: AdmissionPluginOptions) {
  const { requireClientCertificate, ...context } = options;

  // JSON.parse alone: Fastify's default parser (secure-json-parse) also scans every body twice with
  // regular expressions for prototype-poisoning keys; readAdmissionReview refuses those keys in
  // the walk it makes anyway for the depth limit, so a review pays for one pass, not three.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (error) {
      done(new MalformedReviewError(`body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });

  if (requireClientCertificate) {
    app.addHook('onRequest', async (request, reply) => {
      const socket = request.raw.socket as TLSSocket;
      if (socket.authorized) return;
      return reply.code(401).send({
        statusCode: 401,
        error: 'Unauthorized',
        message: `a client certificate signed by the configured client CA (TLS_CLIENT_CA_FILE) is required: ${socket.authorizationError ?? 'none presented'}`,
      });
    });
  }

  const route = (path: WebhookPath) =>
    // No Fastify route schema: the body is checked by a validator compiled ahead of time
    // (src/generated/), so start-up compiles nothing; a malformed body is a 400 from the error handler.
    app.post<{ Body: unknown }>(path, async (req, reply) => {
      const started = process.hrtime.bigint();
      const review = readAdmissionReview(req.body).request;
      const result = await answerReview(path, review, context);
      const elapsedNs = Number(process.hrtime.bigint() - started);
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
          lookups: result.lookups.length > 0 ? result.lookups : undefined,
          exemptions: result.exemptions,
          auditAnnotations: result.response.auditAnnotations,
          warnings: result.response.warnings?.length ?? 0,
          durationMs: elapsedNs / 1e6,
        },
        'admission review',
      );
      app.observeReview({
        webhook: path === '/validate' ? 'validate' : 'mutate',
        operation: review.operation,
        verdict: result.verdict,
        rules: result.rules,
        lookups: result.lookups,
        exemptions: result.exemptions,
        durationSeconds: elapsedNs / 1e9,
      });
      // The JSON text itself (Fastify sends a string as it is): the same bytes and content type as
      // Fastify serialising the object, without JSON.stringify scanning the base64 patch.
      reply.type('application/json; charset=utf-8');
      return admissionReviewJson(result.response);
    });

  for (const path of WEBHOOK_PATHS) route(path);
}
