import type { V1StatefulSet } from '@kubernetes/client-node';
import { Ajv } from 'ajv';
import {
  headlessServiceToLookUp,
  mutateStatefulSet,
  type PolicySettings,
  type ServiceLookup,
  type StatefulSetReview,
  validateStatefulSet,
} from '../policy/index.js';
import { statefulSetSchema } from './schema.js';
import type { AdmissionRequest, AdmissionResponse } from './types.js';

/** Answers "what is Service namespace/name?" for the validating review; the cluster edge implements it. */
export interface ServiceDirectory {
  lookup(namespace: string, name: string): Promise<ServiceLookup>;
}

export interface ReviewContext {
  settings: PolicySettings;
  services: ServiceDirectory;
}

/** How a review ended, for the log line and metrics. */
export type Verdict = 'allowed' | 'denied' | 'patched' | 'skipped';

export interface ReviewResult {
  response: AdmissionResponse;
  verdict: Verdict;
  /** The rules that denied, for metrics. */
  rules: string[];
  lookup?: ServiceLookup['outcome'];
}

/** A review that is well-formed AdmissionReview but carries an object the API server never sends. */
export class InvalidObjectError extends Error {
  readonly statusCode = 400;
}

const ajv = new Ajv({ allErrors: false, strict: false });
const isStatefulSet = ajv.compile<V1StatefulSet>(statefulSetSchema);

function asStatefulSet(value: unknown, field: string): V1StatefulSet | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isStatefulSet(value)) {
    throw new InvalidObjectError(
      `request.${field} is not an apps/v1 StatefulSet: ${ajv.errorsText(isStatefulSet.errors, { dataVar: field })}`,
    );
  }
  return value;
}

function isStatefulSetResource(request: AdmissionRequest): boolean {
  return (
    request.resource.group === 'apps' && request.resource.resource === 'statefulsets' && !request.subResource
  );
}

function statefulSetReview(request: AdmissionRequest): StatefulSetReview {
  const object = asStatefulSet(request.object, 'object');
  const oldObject = asStatefulSet(request.oldObject, 'oldObject');
  return {
    operation: request.operation,
    namespace:
      request.namespace || object?.metadata?.namespace || oldObject?.metadata?.namespace || 'default',
    object,
    oldObject,
  };
}

const skipped = (uid: string): ReviewResult => ({
  response: { uid, allowed: true },
  verdict: 'skipped',
  rules: [],
});

const withWarnings = (response: AdmissionResponse, warnings: string[]): AdmissionResponse =>
  warnings.length > 0 ? { ...response, warnings } : response;

/** POST /validate: the policy's decision, after the Service look-up it asks for. */
export async function validateReview(request: AdmissionRequest, ctx: ReviewContext): Promise<ReviewResult> {
  if (!isStatefulSetResource(request)) return skipped(request.uid);
  const review = statefulSetReview(request);
  const serviceName = headlessServiceToLookUp(review, ctx.settings);
  const lookup = serviceName ? await ctx.services.lookup(review.namespace, serviceName) : undefined;
  const decision = validateStatefulSet(review, ctx.settings, lookup);
  const response: AdmissionResponse = decision.allowed
    ? { uid: request.uid, allowed: true }
    : {
        uid: request.uid,
        allowed: false,
        status: { code: 403, reason: 'Forbidden', message: decision.message },
      };
  return {
    response: withWarnings(response, decision.warnings),
    verdict: decision.allowed ? 'allowed' : 'denied',
    rules: decision.violations.map((v) => v.rule),
    ...(lookup ? { lookup: lookup.outcome } : {}),
  };
}

/** POST /mutate: the policy's patch, base64-encoded as admission.k8s.io/v1 wants it. */
export function mutateReview(request: AdmissionRequest, ctx: Pick<ReviewContext, 'settings'>): ReviewResult {
  if (!isStatefulSetResource(request)) return skipped(request.uid);
  const mutation = mutateStatefulSet(statefulSetReview(request), ctx.settings);
  const response: AdmissionResponse =
    mutation.patch.length > 0
      ? {
          uid: request.uid,
          allowed: true,
          patchType: 'JSONPatch',
          patch: Buffer.from(JSON.stringify(mutation.patch)).toString('base64'),
        }
      : { uid: request.uid, allowed: true };
  return {
    response: withWarnings(response, mutation.warnings),
    verdict: mutation.patch.length > 0 ? 'patched' : 'allowed',
    rules: [],
  };
}
