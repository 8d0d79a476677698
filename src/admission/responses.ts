import type { LookupOutcome } from '../pipeline/ports.js';
import type { Decision, Exemption, JsonPatchOperation, Mutation } from '../policy/index.js';
import type { AdmissionResponse } from './types.js';

/** How a review ended, for the log line and metrics. */
export type Verdict = 'allowed' | 'denied' | 'patched' | 'skipped';

/** The answer to one review, with what the log line and metrics need. */
export interface ReviewResult {
  response: AdmissionResponse;
  verdict: Verdict;
  /** The rules that denied, for metrics. */
  rules: string[];
  /** Every look-up the review made, in order, for the log line and metrics. */
  lookups: LookupOutcome[];
  /** Rules waived by platform exceptions, for metrics. */
  exemptions?: Exemption[];
}

/** The answers controller-runtime calls Allowed, Denied and Patched; warnings and audit annotations added on top. */
export const allowed = (uid: string): AdmissionResponse => ({ uid, allowed: true });

export const denied = (uid: string, message: string): AdmissionResponse => ({
  uid,
  allowed: false,
  status: { code: 403, reason: 'Forbidden', message },
});

/** admission.k8s.io/v1 carries the JSON Patch base64-encoded. */
export const patched = (uid: string, patch: readonly JsonPatchOperation[]): AdmissionResponse => ({
  uid,
  allowed: true,
  patchType: 'JSONPatch',
  patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
});

export const withWarnings = (response: AdmissionResponse, warnings: readonly string[]): AdmissionResponse =>
  warnings.length > 0 ? { ...response, warnings: [...warnings] } : response;

export const withAuditAnnotations = (
  response: AdmissionResponse,
  annotations: Record<string, string> | undefined,
): AdmissionResponse => (annotations ? { ...response, auditAnnotations: annotations } : response);

/** A request no handler is bound to: allowed without looking. */
export const skipped = (uid: string): ReviewResult => ({
  response: allowed(uid),
  verdict: 'skipped',
  rules: [],
  lookups: [],
});

/** A validating decision as the answer. */
export function decided(uid: string, decision: Decision, lookups: LookupOutcome[]): ReviewResult {
  const response = decision.allowed ? allowed(uid) : denied(uid, decision.message);
  return {
    response: withAuditAnnotations(withWarnings(response, decision.warnings), decision.auditAnnotations),
    verdict: decision.allowed ? 'allowed' : 'denied',
    rules: decision.violations.map((v) => v.rule),
    lookups,
    ...(decision.exemptions ? { exemptions: decision.exemptions } : {}),
  };
}

/** A mutating decision as the answer: the patch, or a denial when a look-up it needed failed closed. */
export function mutated(uid: string, mutation: Mutation, lookups: LookupOutcome[]): ReviewResult {
  if (mutation.denial) {
    return {
      response: withWarnings(denied(uid, mutation.denial), mutation.warnings),
      verdict: 'denied',
      rules: [],
      lookups,
    };
  }
  const response = mutation.patch.length > 0 ? patched(uid, mutation.patch) : allowed(uid);
  return {
    response: withAuditAnnotations(withWarnings(response, mutation.warnings), mutation.auditAnnotations),
    verdict: mutation.patch.length > 0 ? 'patched' : 'allowed',
    rules: [],
    lookups,
  };
}
