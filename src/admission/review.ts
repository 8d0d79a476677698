import {
  type ConfigMapLookup,
  type ConfigMaps,
  claimsToLookUp,
  clientRoutingNeedsServices,
  clientRoutingNeedsStatefulSets,
  clientRoutingWarnings,
  configMapsToLookUp,
  type Decision,
  type ExceptionList,
  type Exemption,
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

/** Answers "what is ConfigMap namespace/name?" for a server started with a config file; the cluster edge implements it. */
export interface ConfigMapDirectory {
  lookup(namespace: string, name: string): Promise<ConfigMapLookup>;
}

/** The platform team's exceptions in force now (reloaded while the server runs). */
export interface ExceptionSource {
  current(): ExceptionList;
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
  /** Without it, a server whose config file is in a ConfigMap falls under lookupFailureMode. */
  configMaps?: ConfigMapDirectory | undefined;
  exceptions?: ExceptionSource | undefined;
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
  /** Rules waived by platform exceptions, for metrics. */
  exemptions?: Exemption[];
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
  const configMapNames = configMapsToLookUp(review, ctx.settings);
  const serviceLookup = () => (serviceName ? ctx.services.lookup(review.namespace, serviceName) : undefined);
  // Nearly every review reads no ConfigMap: it then costs no extra promise on the hot path.
  const [lookup, configMaps] =
    configMapNames.length > 0
      ? await Promise.all([serviceLookup(), readConfigMaps(review, ctx, configMapNames)])
      : [await serviceLookup(), NO_CONFIG_MAPS];
  const context = { configMaps: configMaps.read, exceptions: ctx.exceptions?.current() };
  const decision = validateStatefulSet(review, ctx.settings, lookup, context);
  const lookups: Array<{ outcome: LookupOutcome }> = [...(lookup ? [lookup] : []), ...configMaps.lookups];
  if (decision.allowed && ctx.services.list && clientRoutingNeedsServices(review, ctx.settings, context)) {
    const services = await ctx.services.list(review.namespace);
    lookups.push(services);
    decision.warnings.push(...clientRoutingWarnings(review, ctx.settings, services, context));
  }
  return decided(request.uid, decision, lookups);
}

const unconfigured = { outcome: 'unavailable', reason: 'StatefulSet look-ups are not configured' } as const;

interface ConfigMapsRead {
  read: ConfigMaps | undefined;
  lookups: readonly ConfigMapLookup[];
}

const NO_CONFIG_MAPS: ConfigMapsRead = { read: undefined, lookups: [] };

/** The ConfigMaps the policy asks for (config files of the server), read in parallel. */
async function readConfigMaps(
  review: StatefulSetReview,
  ctx: Pick<ReviewContext, 'settings' | 'configMaps'>,
  names = configMapsToLookUp(review, ctx.settings),
): Promise<ConfigMapsRead> {
  if (names.length === 0) return NO_CONFIG_MAPS;
  const directory = ctx.configMaps;
  const lookups = await Promise.all(
    names.map(
      (name): Promise<ConfigMapLookup> =>
        directory
          ? directory.lookup(review.namespace, name)
          : Promise.resolve({ outcome: 'unavailable', reason: 'ConfigMap look-ups are not configured' }),
    ),
  );
  return { read: new Map(names.map((name, i) => [name, lookups[i] as ConfigMapLookup])), lookups };
}

const withAuditAnnotations = (
  response: AdmissionResponse,
  annotations: Record<string, string> | undefined,
): AdmissionResponse => (annotations ? { ...response, auditAnnotations: annotations } : response);

function decided(uid: string, decision: Decision, lookups: Array<{ outcome: LookupOutcome }>): ReviewResult {
  const response: AdmissionResponse = decision.allowed
    ? { uid, allowed: true }
    : { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: decision.message } };
  return {
    response: withAuditAnnotations(withWarnings(response, decision.warnings), decision.auditAnnotations),
    verdict: decision.allowed ? 'allowed' : 'denied',
    rules: decision.violations.map((v) => v.rule),
    lookups: lookups.map((l) => l.outcome),
    ...(decision.exemptions ? { exemptions: decision.exemptions } : {}),
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
  let configMaps = NO_CONFIG_MAPS;
  if (statefulSet.outcome === 'found') {
    const scaled = scaledStatefulSetReview(review, statefulSet.statefulSet);
    const serviceName = headlessServiceToLookUp(scaled, ctx.settings);
    [service, configMaps] = await Promise.all([
      serviceName ? ctx.services.lookup(review.namespace, serviceName) : undefined,
      readConfigMaps(scaled, ctx),
    ]);
  }
  const decision = validateScale(review, ctx.settings, statefulSet, service, {
    configMaps: configMaps.read,
    exceptions: ctx.exceptions?.current(),
  });
  return decided(request.uid, decision, [statefulSet, ...(service ? [service] : []), ...configMaps.lookups]);
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
  const context = { exceptions: ctx.exceptions?.current() };
  const protection = validateServiceChange(review, ctx.settings, statefulSets, context);
  const routing = validateClientRouting(review, ctx.settings, statefulSets, context);
  // A LIST has no not-found: an empty namespace is a successful look-up.
  return decided(request.uid, combined(protection, routing), [statefulSets]);
}

/** Two decisions about one object: denied when either denies, every warning, waiver and annotation kept. */
function combined(a: Decision, b: Decision): Decision {
  const denied = [a, b].filter((d) => !d.allowed);
  const exemptions = [...(a.exemptions ?? []), ...(b.exemptions ?? [])];
  const annotations = { ...a.auditAnnotations, ...b.auditAnnotations };
  if (a.auditAnnotations?.exception && b.auditAnnotations?.exception) {
    annotations.exception = `${a.auditAnnotations.exception},${b.auditAnnotations.exception}`;
  }
  return {
    allowed: denied.length === 0,
    violations: [...a.violations, ...b.violations],
    warnings: [...a.warnings, ...b.warnings],
    message: denied.map((d) => d.message).join('\n'),
    ...(exemptions.length > 0 ? { exemptions } : {}),
    ...(Object.keys(annotations).length > 0 ? { auditAnnotations: annotations } : {}),
  };
}

const unconfiguredClaims = {
  outcome: 'unavailable',
  reason: 'PersistentVolumeClaim look-ups are not configured',
} as const;

type MutationContext = Pick<ReviewContext, 'settings' | 'configMaps' | 'claims' | 'clock'>;

/**
 * POST /mutate: the policy's patch, base64-encoded as admission.k8s.io/v1 wants it. It waits only
 * for the look-ups the policy asks for: the ConfigMap of a server started with a config file,
 * then, at the CREATE of a StatefulSet that gets the bootstrap hook, the namespace's claims.
 */
export function mutateReview(
  request: AdmissionRequest,
  ctx: MutationContext,
): ReviewResult | Promise<ReviewResult> {
  if (!isStatefulSetResource(request)) return skipped(request.uid);
  const review = statefulSetReview(request);
  const names = configMapsToLookUp(review, ctx.settings);
  if (names.length === 0) return withClaims(request.uid, review, ctx, NO_CONFIG_MAPS);
  return readConfigMaps(review, ctx, names).then((read) => withClaims(request.uid, review, ctx, read));
}

/** The claim look-up, when the policy needs one (a promise only then), and the mutation. */
function withClaims(
  uid: string,
  review: StatefulSetReview,
  ctx: MutationContext,
  configMaps: ConfigMapsRead,
): ReviewResult | Promise<ReviewResult> {
  const namespace = claimsToLookUp(review, ctx.settings, { configMaps: configMaps.read });
  if (namespace === undefined) return mutated(uid, review, ctx, configMaps, undefined);
  if (!ctx.claims) return mutated(uid, review, ctx, configMaps, unconfiguredClaims);
  return ctx.claims.list(namespace).then((claims) => mutated(uid, review, ctx, configMaps, claims));
}

function mutated(
  uid: string,
  review: StatefulSetReview,
  ctx: MutationContext,
  configMaps: ConfigMapsRead,
  claims: PersistentVolumeClaimListLookup | undefined,
): ReviewResult {
  const now = Math.floor((ctx.clock ?? Date.now)() / 1000);
  const mutation = mutateStatefulSet(review, ctx.settings, { configMaps: configMaps.read, claims, now });
  const lookups = [...configMaps.lookups.map((l) => l.outcome), ...(claims ? [claims.outcome] : [])];
  if (mutation.denial) {
    return {
      response: withWarnings(
        { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: mutation.denial } },
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
          uid,
          allowed: true,
          patchType: 'JSONPatch',
          patch: Buffer.from(JSON.stringify(mutation.patch)).toString('base64'),
        }
      : { uid, allowed: true };
  return {
    response: withAuditAnnotations(withWarnings(response, mutation.warnings), mutation.auditAnnotations),
    verdict: mutation.patch.length > 0 ? 'patched' : 'allowed',
    rules: [],
    lookups,
  };
}
