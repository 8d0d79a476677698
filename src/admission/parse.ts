import { describeErrors } from '../validation.js';
import type { AdmissionRequest, AdmissionReview } from './types.js';
import { isAdmissionReview } from './validators.js';

/** A body that is not an AdmissionReview the API server would send: answered with HTTP 400. */
export class MalformedReviewError extends Error {
  readonly statusCode = 400;
}

/**
 * Real objects nest about 20 levels deep; far deeper JSON parses fine but would overflow the stack
 * of recursive comparisons in the policy, so it is refused before anything else looks at it.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * True when `value` holds an object or array at nesting depth `limit + 1` or deeper. Recursion
 * stops at `limit` levels, so any input is safe; no allocation, as it walks every review body.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (nestedDeeperThan(value[i], limit - 1)) return true;
  } else {
    for (const key in value) {
      if (nestedDeeperThan((value as Record<string, unknown>)[key], limit - 1)) return true;
    }
  }
  return false;
}

/** The parsed JSON body as an AdmissionReview v1 request, or a MalformedReviewError saying why not. */
export function readAdmissionReview(body: unknown): AdmissionReview & { request: AdmissionRequest } {
  if (nestedDeeperThan(body, MAX_JSON_DEPTH)) {
    throw new MalformedReviewError(`body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (!isAdmissionReview(body)) {
    throw new MalformedReviewError(
      `body is not an admission.k8s.io/v1 AdmissionReview request: ${describeErrors(isAdmissionReview.errors, 'body')}`,
    );
  }
  return body;
}
