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

const TOO_DEEP = `body is nested deeper than ${MAX_JSON_DEPTH} levels`;
const PROTO_KEY = 'body contains a "__proto__" key, which no Kubernetes object has';
const CONSTRUCTOR_KEY = 'body contains a "constructor.prototype" key, which no Kubernetes object has';

/**
 * Why a parsed body must be refused before anything reads it, or undefined: nesting deeper than
 * `levels`, or the keys of prototype poisoning (what secure-json-parse, Fastify's default JSON
 * parser, scans every body for with regular expressions; here it is one walk for both checks).
 * Recursion stops at `levels`, so any input is safe; no allocation, as it walks every review body.
 */
export function hazardIn(value: unknown, levels: number): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (levels === 0) return TOO_DEEP;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hazard = hazardIn(value[i], levels - 1);
      if (hazard) return hazard;
    }
    return undefined;
  }
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (key === '__proto__') return PROTO_KEY;
    if (
      key === 'constructor' &&
      typeof child === 'object' &&
      child !== null &&
      Object.hasOwn(child, 'prototype')
    )
      return CONSTRUCTOR_KEY;
    const hazard = hazardIn(child, levels - 1);
    if (hazard) return hazard;
  }
  return undefined;
}

/** The parsed JSON body as an AdmissionReview v1 request, or a MalformedReviewError saying why not. */
export function readAdmissionReview(body: unknown): AdmissionReview & { request: AdmissionRequest } {
  const hazard = hazardIn(body, MAX_JSON_DEPTH);
  if (hazard) throw new MalformedReviewError(hazard);
  if (!isAdmissionReview(body)) {
    throw new MalformedReviewError(
      `body is not an admission.k8s.io/v1 AdmissionReview request: ${describeErrors(isAdmissionReview.errors, 'body')}`,
    );
  }
  return body;
}
