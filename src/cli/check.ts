import type { V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import type { ConfigMapDirectory, ServiceDirectory } from '../admission/review.js';
import { isStatefulSet } from '../admission/validators.js';
import {
  type ConfigMapLookup,
  clientRoutingNeedsServices,
  clientRoutingWarnings,
  configMapsToLookUp,
  detectDatabase,
  type ExceptionList,
  type Exemption,
  headlessServiceToLookUp,
  type JsonPatchOperation,
  mutateStatefulSet,
  type PolicySettings,
  STEPPED_ASIDE_ANNOTATION,
  type StatefulSetReview,
  type Violation,
  validateStatefulSet,
} from '../policy/index.js';
import { describeErrors } from '../validation.js';
import { InputError } from './errors.js';
import type { Manifest, ManifestObject } from './input.js';
import { namespaceOf } from './services.js';

export interface CheckOptions {
  settings: PolicySettings;
  /** Where objects without metadata.namespace land, as kubectl's --namespace. */
  defaultNamespace: string;
  /** Answers the headless-Service look-up: the Services of the input, or the cluster. */
  services: ServiceDirectory;
  /** Answers ConfigMap look-ups for servers started with a config file: the input's, or the cluster's. */
  configMaps: ConfigMapDirectory;
  /** The platform team's exceptions (`--exceptions`), honoured as the webhook does. */
  exceptions?: ExceptionList | undefined;
  /** Epoch seconds the initiation window starts at; now unless a test fixes it. */
  now?: number;
}

/** What the API server would make of one StatefulSet of the input. */
export interface StatefulSetCheck {
  /** `file:line`, or the kustomization directory it was rendered from. */
  source: string;
  kind: 'StatefulSet';
  namespace: string;
  name: string;
  /** The engine id (`mongodb`) when sts-guard recognises a database, else undefined: nothing to check. */
  database: string | undefined;
  allowed: boolean;
  violations: Violation[];
  /** The warnings kubectl would print: the mutating webhook's, then the validating webhook's. */
  warnings: string[];
  /** The mutating webhook's JSON Patch. */
  patch: JsonPatchOperation[];
  /** What the patch injects, as recorded in the sts-guard.io/injected annotation. */
  injected: string[];
  /** The StatefulSet after the patch: what the validating webhook judged and what would be stored. */
  mutated: V1StatefulSet;
  /** Rules waived by platform exceptions. */
  exemptions: Exemption[];
  /** Why sts-guard leaves this StatefulSet to its controller (an operator), when it does. */
  steppedAside: string | undefined;
}

export interface CheckReport {
  statefulSets: StatefulSetCheck[];
  /** Objects of other kinds, which sts-guard lets through without looking. */
  passedThrough: number;
}

/** `apps/v1` today; any version of the apps group is the same resource to the webhook's rules. */
export const isStatefulSetManifest = (object: Manifest): boolean =>
  object.kind === 'StatefulSet' &&
  typeof object.apiVersion === 'string' &&
  object.apiVersion.startsWith('apps/');

const sourceOf = (m: ManifestObject) => (m.line === undefined ? m.source : `${m.source}:${m.line}`);

/** Applies a patch the way the API server does: every operation must apply, or none. */
const applied = (object: V1StatefulSet, patch: JsonPatchOperation[]): V1StatefulSet =>
  jsonpatch.applyPatch(structuredClone(object), patch as jsonpatch.Operation[], true, false).newDocument;

/**
 * One StatefulSet through the webhook's policy, in the API server's order: the mutating webhook's
 * patch is applied first, then the validating webhook judges the mutated object, after the
 * Service look-up the policy asks for. Checked as a CREATE: what a new environment would see.
 */
export async function checkStatefulSet(
  statefulSet: V1StatefulSet,
  namespace: string,
  options: Pick<CheckOptions, 'settings' | 'services' | 'configMaps' | 'exceptions' | 'now'>,
): Promise<Omit<StatefulSetCheck, 'source'>> {
  const { settings, services } = options;
  const review: StatefulSetReview = { operation: 'CREATE', namespace, object: statefulSet };
  const names = configMapsToLookUp(review, settings);
  const lookups = await Promise.all(names.map((n) => options.configMaps.lookup(namespace, n)));
  const configMaps = new Map(
    names.map((n, i): [string, ConfigMapLookup] => [n, lookups[i] as ConfigMapLookup]),
  );
  // A new environment: no volume claims exist yet, so the bootstrap gets its initiation window.
  const mutation = mutateStatefulSet(review, settings, {
    configMaps,
    claims: { outcome: 'found', claims: [] },
    now: options.now ?? Math.floor(Date.now() / 1000),
  });
  const mutated = applied(statefulSet, mutation.patch);

  const validated: StatefulSetReview = { ...review, object: mutated };
  const serviceName = headlessServiceToLookUp(validated, settings);
  const lookup = serviceName ? await services.lookup(namespace, serviceName) : undefined;
  const context = { configMaps, exceptions: options.exceptions };
  const decision = validateStatefulSet(validated, settings, lookup, context);
  // The client-routing rule: Services of the input (or the cluster) that balance over its pods.
  if (services.list && clientRoutingNeedsServices(validated, settings, context)) {
    const found = await services.list(namespace);
    decision.warnings.push(...clientRoutingWarnings(validated, settings, found, context));
  }

  return {
    kind: 'StatefulSet',
    namespace,
    name: statefulSet.metadata?.name ?? '',
    database: detectDatabase(statefulSet)?.engine.id,
    allowed: decision.allowed,
    violations: decision.violations,
    warnings: [...mutation.warnings, ...decision.warnings],
    patch: mutation.patch,
    injected: mutation.injected,
    mutated,
    exemptions: decision.exemptions ?? [],
    steppedAside: decision.auditAnnotations?.[STEPPED_ASIDE_ANNOTATION],
  };
}

/**
 * Every StatefulSet of the input, checked; every other object passed through. A StatefulSet of a
 * shape the API server would reject is an input error, reported with all others of its kind.
 */
export async function checkManifests(
  manifests: readonly ManifestObject[],
  options: CheckOptions,
): Promise<CheckReport> {
  const candidates = manifests.filter((m) => isStatefulSetManifest(m.object));
  const malformed: string[] = [];
  for (const m of candidates) {
    if (isStatefulSet(m.object)) continue;
    // The shape the webhook accepts (the API server's own validation guarantees it there).
    const why = describeErrors(isStatefulSet.errors, 'object');
    malformed.push(`${sourceOf(m)}: not a valid apps/v1 StatefulSet: ${why}`);
  }
  if (malformed.length > 0) throw new InputError(malformed.join('\n'));

  const statefulSets: StatefulSetCheck[] = [];
  for (const m of candidates) {
    const namespace = namespaceOf(m.object, options.defaultNamespace);
    const check = await checkStatefulSet(m.object as V1StatefulSet, namespace, options);
    statefulSets.push({ source: sourceOf(m), ...check });
  }
  return { statefulSets, passedThrough: manifests.length - candidates.length };
}
