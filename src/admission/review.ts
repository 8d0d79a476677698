import {
  claimsToLookUp,
  clientRoutingNeedsServices,
  clientRoutingNeedsStatefulSets,
  clientRoutingWarnings,
  type Decision,
  headlessServiceToLookUp,
  mutateStatefulSet,
  type PersistentVolumeClaimListLookup,
  type PolicySettings,
  type ScaleReview,
  type ServiceListLookup,
  type ServiceLookup,
  type ServiceReview,
  type StatefulSetListLookup,
  type StatefulSetLookup,
  type StatefulSetReview,
  scaledStatefulSetReview,
  serviceProtectionNeedsStatefulSets,
  statefulSetToLookUpForScale,
  validateClientRouting,
  validateScale,
  validateServiceChange,
  validateStatefulSet,
} from '../policy/index.js';
import { describeErrors, type Validator } from '../validation.js';
import { MalformedReviewError } from './parse.js';
import type { AdmissionRequest, AdmissionResponse } from './types.js';
import { isScale, isService, isStatefulSet } from './validators.js';

/** Answers "what is Service namespace/name?" for the validating review; the cluster edge implements it. */
export interface ServiceDirectory {
  lookup(namespace: string, name: string): Promise<ServiceLookup>;
  /**
   * The Services of a namespace, for the client-routing rule on a StatefulSet review. Optional:
   * without it, that check is left to the Service's own review.
   */
  list?(namespace: string): Promise<ServiceListLookup>;
}

/**
 * Reads StatefulSets for the reviews whose object is not one: a Scale (get the StatefulSet it
 * scales) and a Service (list the StatefulSets that may name it). The cluster edge implements it.
 */
export interface StatefulSetDirectory {
  get(namespace: string, name: string): Promise<StatefulSetLookup>;
  list(namespace: string): Promise<StatefulSetListLookup>;
}

/**
 * Lists the PersistentVolumeClaims of a namespace for the mutating review of a StatefulSet CREATE:
 * claims named `<template>-<statefulset>-<ordinal>` mean an earlier StatefulSet of that name left
 * data behind, so the new one gets no initiation window. The cluster edge implements it.
 */
export interface PersistentVolumeClaimDirectory {
  list(namespace: string): Promise<PersistentVolumeClaimListLookup>;
}

export interface ReviewContext {
  settings: PolicySettings;
  services: ServiceDirectory;
  /** Without it, scale and Service reviews that need a StatefulSet fall under lookupFailureMode. */
  statefulSets?: StatefulSetDirectory | undefined;
  /** Without it, a CREATE's claim look-up falls under lookupFailureMode. */
  claims?: PersistentVolumeClaimDirectory | undefined;
  /** Milliseconds since the epoch; Date.now unless a test fixes it. */
  clock?: (() => number) | undefined;
}

export type LookupOutcome = ServiceLookup['outcome'];

/** How a review ended, for the log line and metrics. */
export type Verdict = 'allowed' | 'denied' | 'patched' | 'skipped';

export interface ReviewResult {
  response: AdmissionResponse;
  verdict: Verdict;
  /** The rules that denied, for metrics. */
  rules: string[];
  /** Every look-up the review made, in order, for the log line and metrics. */
  lookups: LookupOutcome[];
}

/** Checks `value` against a schema validator; absent is undefined, the wrong shape is a 400. */
function asObject<T>(validator: Validator<T>, value: unknown, field: string, what: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (!validator(value)) {
    throw new MalformedReviewError(
      `request.${field} is not ${what}: ${describeErrors(validator.errors, field)}`,
    );
  }
  return value;
}

const asStatefulSet = (value: unknown, field: string) =>
  asObject(isStatefulSet, value, field, 'an apps/v1 StatefulSet');

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

/** `kubectl scale statefulset`: resource apps/statefulsets, subresource scale, kind autoscaling/v1 Scale. */
function isStatefulSetScale(request: AdmissionRequest): boolean {
  return (
    request.resource.group === 'apps' &&
    request.resource.resource === 'statefulsets' &&
    request.subResource === 'scale'
  );
}

/** A core v1 Service itself, not services/status or services/proxy. */
function isServiceResource(request: AdmissionRequest): boolean {
  return request.resource.group === '' && request.resource.resource === 'services' && !request.subResource;
}

const skipped = (uid: string): ReviewResult => ({
  response: { uid, allowed: true },
  verdict: 'skipped',
  rules: [],
  lookups: [],
});

const withWarnings = (response: AdmissionResponse, warnings: string[]): AdmissionResponse =>
  warnings.length > 0 ? { ...response, warnings } : response;

/** POST /validate: the policy's decision, after the Service look-up it asks for. */
export async function validateReview(request: AdmissionRequest, ctx: ReviewContext): Promise<ReviewResult> {
  if (isStatefulSetScale(request)) return validateScaleReview(request, ctx);
  if (isServiceResource(request)) return validateServiceReview(request, ctx);
  if (!isStatefulSetResource(request)) return skipped(request.uid);
  const review = statefulSetReview(request);
  const serviceName = headlessServiceToLookUp(review, ctx.settings);
  const lookup = serviceName ? await ctx.services.lookup(review.namespace, serviceName) : undefined;
  const decision = validateStatefulSet(review, ctx.settings, lookup);
  const lookups: Array<{ outcome: LookupOutcome }> = lookup ? [lookup] : [];
  if (decision.allowed && ctx.services.list && clientRoutingNeedsServices(review, ctx.settings)) {
    const services = await ctx.services.list(review.namespace);
    lookups.push(services);
    decision.warnings.push(...clientRoutingWarnings(review, ctx.settings, services));
  }
  return decided(request.uid, decision, lookups);
}

const unconfigured = { outcome: 'unavailable', reason: 'StatefulSet look-ups are not configured' } as const;

function decided(uid: string, decision: Decision, lookups: Array<{ outcome: LookupOutcome }>): ReviewResult {
  const response: AdmissionResponse = decision.allowed
    ? { uid, allowed: true }
    : { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: decision.message } };
  return {
    response: withWarnings(response, decision.warnings),
    verdict: decision.allowed ? 'allowed' : 'denied',
    rules: decision.violations.map((v) => v.rule),
    lookups: lookups.map((l) => l.outcome),
  };
}

/**
 * statefulsets/scale: read the StatefulSet, apply the Scale's replica count, and judge the result
 * like any StatefulSet update (its Service look-up included).
 */
async function validateScaleReview(request: AdmissionRequest, ctx: ReviewContext): Promise<ReviewResult> {
  const object = asObject(isScale, request.object, 'object', 'an autoscaling/v1 Scale');
  const oldObject = asObject(isScale, request.oldObject, 'oldObject', 'an autoscaling/v1 Scale');
  const review: ScaleReview = {
    operation: request.operation,
    namespace: request.namespace || object?.metadata?.namespace || 'default',
    name: request.name || object?.metadata?.name || oldObject?.metadata?.name || '',
    object,
    oldObject,
  };
  const target = statefulSetToLookUpForScale(review, ctx.settings);
  if (!target) return decided(request.uid, validateScale(review, ctx.settings, undefined), []);
  const statefulSet: StatefulSetLookup = ctx.statefulSets
    ? await ctx.statefulSets.get(target.namespace, target.name)
    : unconfigured;
  let service: ServiceLookup | undefined;
  if (statefulSet.outcome === 'found') {
    const serviceName = headlessServiceToLookUp(
      scaledStatefulSetReview(review, statefulSet.statefulSet),
      ctx.settings,
    );
    if (serviceName) service = await ctx.services.lookup(review.namespace, serviceName);
  }
  const decision = validateScale(review, ctx.settings, statefulSet, service);
  return decided(request.uid, decision, service ? [statefulSet, service] : [statefulSet]);
}

/** Service UPDATE/DELETE: list the StatefulSets in the namespace when a headless Service goes away. */
async function validateServiceReview(request: AdmissionRequest, ctx: ReviewContext): Promise<ReviewResult> {
  const object = asObject(isService, request.object, 'object', 'a v1 Service');
  const oldObject = asObject(isService, request.oldObject, 'oldObject', 'a v1 Service');
  const review: ServiceReview = {
    operation: request.operation,
    namespace:
      request.namespace || oldObject?.metadata?.namespace || object?.metadata?.namespace || 'default',
    name: request.name || oldObject?.metadata?.name || object?.metadata?.name || '',
    object,
    oldObject,
  };
  const needed =
    serviceProtectionNeedsStatefulSets(review, ctx.settings) ||
    clientRoutingNeedsStatefulSets(review, ctx.settings);
  if (!needed) return decided(request.uid, validateServiceChange(review, ctx.settings), []);
  // One LIST serves both rules.
  const statefulSets: StatefulSetListLookup = ctx.statefulSets
    ? await ctx.statefulSets.list(review.namespace)
    : unconfigured;
  const protection = validateServiceChange(review, ctx.settings, statefulSets);
  const routing = validateClientRouting(review, ctx.settings, statefulSets);
  // A LIST has no not-found: an empty namespace is a successful look-up.
  return decided(request.uid, combined(protection, routing), [statefulSets]);
}

/** Two decisions about one object: denied when either denies, every warning kept. */
function combined(a: Decision, b: Decision): Decision {
  const denied = [a, b].filter((d) => !d.allowed);
  return {
    allowed: denied.length === 0,
    violations: [...a.violations, ...b.violations],
    warnings: [...a.warnings, ...b.warnings],
    message: denied.map((d) => d.message).join('\n'),
  };
}

const unconfiguredClaims = {
  outcome: 'unavailable',
  reason: 'PersistentVolumeClaim look-ups are not configured',
} as const;

/** POST /mutate: the policy's patch, base64-encoded as admission.k8s.io/v1 wants it. */
export async function mutateReview(
  request: AdmissionRequest,
  ctx: Pick<ReviewContext, 'settings' | 'claims' | 'clock'>,
): Promise<ReviewResult> {
  if (!isStatefulSetResource(request)) return skipped(request.uid);
  const review = statefulSetReview(request);
  const namespace = claimsToLookUp(review);
  let claims: PersistentVolumeClaimListLookup | undefined;
  if (namespace !== undefined) claims = ctx.claims ? await ctx.claims.list(namespace) : unconfiguredClaims;
  const now = Math.floor((ctx.clock ?? Date.now)() / 1000);
  const mutation = mutateStatefulSet(review, ctx.settings, { claims, now });
  const lookups = claims ? [claims.outcome] : [];
  if (mutation.denial) {
    return {
      response: withWarnings(
        {
          uid: request.uid,
          allowed: false,
          status: { code: 403, reason: 'Forbidden', message: mutation.denial },
        },
        mutation.warnings,
      ),
      verdict: 'denied',
      rules: [],
      lookups,
    };
  }
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
    lookups,
  };
}
