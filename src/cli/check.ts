import type { V1StatefulSet } from '@kubernetes/client-node';
import { isStatefulSet } from '../admission/validators.js';
import type {
  ConfigMapDirectory,
  PersistentVolumeClaimDirectory,
  ServiceDirectory,
} from '../pipeline/ports.js';
import { admitStatefulSet } from '../pipeline/statefulset.js';
import {
  type ExceptionList,
  type Exemption,
  type Finding,
  type JsonPatchOperation,
  type PolicySettings,
  STEPPED_ASIDE_ANNOTATION,
  type Violation,
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
  /** The denial as the API server returns it to kubectl (empty when admitted). */
  message: string;
  violations: Violation[];
  /** Everything the validating webhook's rules and advisories found (denials, warnings, waivers). */
  findings: Finding[];
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

/** A new environment: no volume claims exist yet, so the bootstrap gets its initiation window. */
const NO_CLAIMS_YET: PersistentVolumeClaimDirectory = {
  list: async () => ({ outcome: 'found', claims: [] }),
};

/**
 * One StatefulSet through the webhook's pipeline, as the API server would admit it: the mutating
 * webhook's patch first, then the validating webhook's rules on the mutated object, after the
 * look-ups the policy asks for. Checked as a CREATE: what a new environment would see.
 */
export async function checkStatefulSet(
  statefulSet: V1StatefulSet,
  namespace: string,
  options: Pick<CheckOptions, 'settings' | 'services' | 'configMaps' | 'exceptions' | 'now'>,
): Promise<Omit<StatefulSetCheck, 'source'>> {
  const exceptions = options.exceptions;
  const now = options.now;
  const admission = await admitStatefulSet(
    { operation: 'CREATE', namespace, object: statefulSet },
    {
      settings: options.settings,
      services: options.services,
      configMaps: options.configMaps,
      claims: NO_CLAIMS_YET,
      exceptions: exceptions ? { current: () => exceptions } : undefined,
      clock: now === undefined ? undefined : () => now * 1000,
    },
  );
  const { mutation, decision } = admission;
  return {
    kind: 'StatefulSet',
    namespace,
    name: statefulSet.metadata?.name ?? '',
    database: admission.engine,
    allowed: decision.allowed,
    message: decision.message,
    violations: decision.violations,
    findings: decision.findings,
    warnings: [...mutation.warnings, ...decision.warnings],
    patch: mutation.patch,
    injected: mutation.injected,
    mutated: admission.mutated,
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
