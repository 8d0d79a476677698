import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { admissionReviewJson } from '../../admission/answer.js';
import { readAdmissionReview } from '../../admission/parse.js';
import {
  mutateReview,
  type ReviewContext,
  type ReviewResult,
  validateReview,
} from '../../admission/review.js';
import type { AdmissionRequest } from '../../admission/types.js';

type Handler = (request: AdmissionRequest) => Promise<ReviewResult> | ReviewResult;

function objectName(object: unknown): string {
  const name = (object as { metadata?: { name?: unknown } } | null | undefined)?.metadata?.name;
  return typeof name === 'string' ? name : '';
}

/** POST /validate and POST /mutate: AdmissionReview v1 in, AdmissionReview v1 out. */
async function admission(app: FastifyInstance, context: ReviewContext) {
  const route = (path: '/validate' | '/mutate', handler: Handler) =>
    // No Fastify route schema: the body is checked by a validator compiled ahead of time
    // (src/generated/), so start-up compiles nothing; a malformed body is a 400 from the error handler.
    app.post<{ Body: unknown }>(path, async (req, reply) => {
      const started = process.hrtime.bigint();
      const review = readAdmissionReview(req.body).request;
      const result = await handler(review);
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

  route('/validate', (request) => validateReview(request, context));
  route('/mutate', (request) => mutateReview(request, context));
}

// Reviews are counted by the metrics plugin, so it must be registered first (buildApp does).
export const admissionPlugin = fp(admission, {
  name: 'sts-guard-admission',
  dependencies: ['sts-guard-metrics'],
});
