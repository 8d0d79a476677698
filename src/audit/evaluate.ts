import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { ReviewContext, ServiceDirectory, StatefulSetDirectory } from '../pipeline/ports.js';
import { validateServiceReview } from '../pipeline/service.js';
import { validateStatefulSetReview } from '../pipeline/statefulset.js';
import {
  type CheckId,
  clientRoutingNeedsServicesFor,
  type Decision,
  databaseFacts,
  inspectDatabase,
  type PolicySettings,
  type RuleId,
  STEPPED_ASIDE_ANNOTATION,
  type StatefulSetReview,
} from '../policy/index.js';

/**
 * What the audit judges, through the one pipeline the webhook and `sts-guard check` run: each
 * StatefulSet as the validating webhook would judge a CREATE of it as it is stored now ("would it
 * be admitted today"), each Service as a Service CREATE (client-routing). The look-ups are
 * answered from what the caller holds: the in-cluster audit's informer caches, the CLI's LIST.
 */

/** The object a result is about, as a report's `scope` and owner reference name it. */
export interface AuditedRef {
  apiVersion: 'apps/v1' | 'v1';
  kind: 'StatefulSet' | 'Service';
  namespace: string;
  name: string;
  /** Absent only for objects that were never stored (manifests): no report can be written for them. */
  uid?: string | undefined;
}

export interface AuditedObject {
  ref: AuditedRef;
  /** The validating decision: findings, warnings, the denial message. */
  decision: Decision;
  /** The engine id (`mongodb`) of a database StatefulSet, else undefined. */
  engine: string | undefined;
  /** The rules this evaluation ran on the object: where no finding names one, it passed. */
  evaluated: CheckId[];
  /** Why sts-guard leaves the StatefulSet to its controller, when it does (no rule ran). */
  steppedAside: string | undefined;
}

const refOf = (
  object: V1StatefulSet | V1Service,
  kind: AuditedRef['kind'],
  namespace: string,
): AuditedRef => ({
  apiVersion: kind === 'StatefulSet' ? 'apps/v1' : 'v1',
  kind,
  namespace,
  name: object.metadata?.name ?? '',
  uid: object.metadata?.uid,
});

/**
 * The rules the validating stage evaluates on a StatefulSet CREATE: for a database StatefulSet of
 * more than one member that sts-guard does not leave to an operator, each rule not `off`;
 * client-routing only for a replica set (the pipeline lists Services only then) that no exception
 * exempts from it.
 */
export function rulesEvaluated(
  review: StatefulSetReview,
  settings: PolicySettings,
  ctx: ReviewContext,
): RuleId[] {
  const facts = databaseFacts(review, settings);
  if (!facts || facts.steppedAside || facts.replicas <= 1) return [];
  const rules: RuleId[] = (['replica-set', 'headless-service'] as const).filter(
    (rule) => settings.rules[rule] !== 'off',
  );
  // The config-file ConfigMaps are not read for this: a set configured only there counts as
  // not replicated, so it gets no client-routing pass (its findings are unaffected).
  const db = inspectDatabase(facts, settings, undefined);
  if (clientRoutingNeedsServicesFor(db, settings, { exceptions: ctx.exceptions?.current() })) {
    rules.push('client-routing');
  }
  return rules;
}

/** A stored StatefulSet, judged as the validating webhook judges its CREATE. */
export async function auditStatefulSet(
  statefulSet: V1StatefulSet,
  ctx: ReviewContext,
): Promise<AuditedObject> {
  const namespace = statefulSet.metadata?.namespace || 'default';
  const review: StatefulSetReview = { operation: 'CREATE', namespace, object: statefulSet };
  const { decision, engine } = await validateStatefulSetReview(review, ctx);
  // The pipeline checks client-routing only on a review it admits: a denied one is not checked.
  const evaluated = rulesEvaluated(review, ctx.settings, ctx).filter(
    (rule) => rule !== 'client-routing' || decision.allowed,
  );
  return {
    ref: refOf(statefulSet, 'StatefulSet', namespace),
    decision,
    engine,
    evaluated,
    steppedAside: decision.auditAnnotations?.[STEPPED_ASIDE_ANNOTATION],
  };
}

/** A stored Service, judged as the validating webhook judges its CREATE (client-routing). */
export async function auditService(service: V1Service, ctx: ReviewContext): Promise<AuditedObject> {
  const namespace = service.metadata?.namespace || 'default';
  const name = service.metadata?.name ?? '';
  const { decision } = await validateServiceReview(
    { operation: 'CREATE', namespace, name, object: service },
    ctx,
  );
  return {
    ref: refOf(service, 'Service', namespace),
    decision,
    engine: undefined,
    evaluated: [],
    steppedAside: undefined,
  };
}

/** Objects being deleted are not judged: their reports go with them (owner reference). */
export const beingDeleted = (object: V1StatefulSet | V1Service) =>
  Boolean(object.metadata?.deletionTimestamp);

/** The StatefulSets and Services of a cluster, by namespace: what the look-ups are answered from. */
export interface ObjectsByNamespace<T> {
  get(namespace: string, name: string): T | undefined;
  list(namespace: string): readonly T[];
}

/**
 * The pipeline's look-up ports answered from objects already read (informer caches, LIST pages):
 * a Service missing there is not-found, as a live GET at that moment would say.
 */
export function heldDirectories(
  statefulSets: ObjectsByNamespace<V1StatefulSet>,
  services: ObjectsByNamespace<V1Service>,
): { services: ServiceDirectory; statefulSets: StatefulSetDirectory } {
  return {
    services: {
      async lookup(namespace, name) {
        const service = services.get(namespace, name);
        return service ? { outcome: 'found', service } : { outcome: 'not-found' };
      },
      async list(namespace) {
        return { outcome: 'found', services: services.list(namespace) };
      },
    },
    statefulSets: {
      async get(namespace, name) {
        const statefulSet = statefulSets.get(namespace, name);
        return statefulSet ? { outcome: 'found', statefulSet } : { outcome: 'not-found' };
      },
      async list(namespace) {
        return { outcome: 'found', statefulSets: [...statefulSets.list(namespace)] };
      },
    },
  };
}

/** Objects in memory (a LIST, manifests) indexed by namespace and name. */
export function indexByNamespace<T extends { metadata?: { namespace?: string; name?: string } }>(
  objects: readonly T[],
  defaultNamespace = 'default',
): ObjectsByNamespace<T> {
  const byNamespace = new Map<string, Map<string, T>>();
  for (const object of objects) {
    const namespace = object.metadata?.namespace || defaultNamespace;
    let names = byNamespace.get(namespace);
    if (!names) {
      names = new Map();
      byNamespace.set(namespace, names);
    }
    names.set(object.metadata?.name ?? '', object);
  }
  return {
    get: (namespace, name) => byNamespace.get(namespace)?.get(name),
    list: (namespace) => [...(byNamespace.get(namespace)?.values() ?? [])],
  };
}
