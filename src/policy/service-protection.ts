import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { desiredReplicas, detectDatabase } from './detect.js';
import { exceptionFor } from './exceptions.js';
import { stepAsideReason } from './owners.js';
import type { Decision, Exemption, Operation, PolicyContext, PolicySettings, Violation } from './types.js';

/** An UPDATE or DELETE of a v1 Service. On DELETE `object` is null and `oldObject` is the Service. */
export interface ServiceReview {
  operation: Operation;
  namespace: string;
  /** `request.name`: the only name a DELETE without `oldObject` carries. */
  name: string;
  object?: V1Service | undefined;
  oldObject?: V1Service | undefined;
}

/** What the edge found when it listed the StatefulSets in the Service's namespace. */
export type StatefulSetListLookup =
  | { outcome: 'found'; statefulSets: V1StatefulSet[] }
  | { outcome: 'unavailable'; reason: string };

const isHeadless = (service: V1Service | undefined) => service?.spec?.clusterIP === 'None';

/** How the review takes a headless Service away, or undefined when it stays headless. */
function removal(review: ServiceReview): string | undefined {
  const service = `Service "${review.namespace}/${review.name}"`;
  if (review.operation === 'DELETE') {
    // Deleting a ClusterIP Service is how the headless-service rule's fix recreates it headless,
    // so only a headless one is protected. The API server sends it as oldObject; when it does
    // not, assume it is headless.
    return review.oldObject && !isHeadless(review.oldObject) ? undefined : `deleting ${service}`;
  }
  if (
    review.operation === 'UPDATE' &&
    review.object &&
    isHeadless(review.oldObject) &&
    !isHeadless(review.object)
  ) {
    // clusterIP is immutable except through a type change (ExternalName clears it).
    const spec = review.object?.spec;
    return `changing ${service} to ${spec?.type ? `type ${spec.type}, ` : ''}clusterIP ${spec?.clusterIP || '(unset)'}`;
  }
  return undefined;
}

/**
 * True when the decision depends on the StatefulSets in the namespace: the rule is on and the
 * review deletes a headless Service or makes it non-headless. The edge lists them only then.
 */
export function serviceProtectionNeedsStatefulSets(review: ServiceReview, settings: PolicySettings): boolean {
  return (
    settings.rules['service-protection'] !== 'off' && review.name !== '' && removal(review) !== undefined
  );
}

/**
 * The replicated databases whose members reach each other through Service `name`: database
 * StatefulSets above one replica naming it as `spec.serviceName`. One already being deleted
 * (deletionTimestamp set) no longer counts, so namespace teardown and "delete the StatefulSet
 * first" go through.
 */
export function statefulSetsServedBy(name: string, statefulSets: readonly V1StatefulSet[]): V1StatefulSet[] {
  return statefulSets.filter(
    (sts) =>
      sts.spec?.serviceName === name &&
      !sts.metadata?.deletionTimestamp &&
      desiredReplicas(sts) > 1 &&
      detectDatabase(sts) !== undefined,
  );
}

function protectionViolation(review: ServiceReview, served: V1StatefulSet[]): Violation {
  const names = served.map((sts) => sts.metadata?.name ?? '(unnamed)');
  const described = served
    .map((sts) => {
      const engine = detectDatabase(sts)?.engine.displayName ?? 'database';
      return `StatefulSet "${review.namespace}/${sts.metadata?.name}" (${engine}, ${desiredReplicas(sts)} replicas)`;
    })
    .join(', ');
  const them = served.length === 1 ? 'it' : 'them';
  return {
    rule: 'service-protection',
    problem: `it is the headless Service (spec.serviceName) of ${described}; without it the members lose the DNS names (<pod>.${review.name}.${review.namespace}.svc) they find each other by, and the replica set breaks.`,
    fix: `first scale ${them} to 1 replica (kubectl scale statefulset ${names.join(' ')} -n ${review.namespace} --replicas=1) or delete ${them} (the PersistentVolumeClaims stay), then retry. With Argo CD, keep the Service in the application's manifests (or annotate it argocd.argoproj.io/sync-options: Prune=false) until then.`,
  };
}

const LIST_FIX =
  'retry once sts-guard can reach the Kubernetes API with list on statefulsets (see its logs).';

/**
 * The validating decision for a Service UPDATE or DELETE. Pure: the StatefulSets in the namespace,
 * when `serviceProtectionNeedsStatefulSets` asked for them, are listed by the caller and passed in.
 */
export function validateServiceChange(
  review: ServiceReview,
  settings: PolicySettings,
  statefulSets?: StatefulSetListLookup,
  context: PolicyContext = {},
): Decision {
  const allow: Decision = { allowed: true, violations: [], findings: [], warnings: [], message: '' };
  if (!serviceProtectionNeedsStatefulSets(review, settings)) return allow;
  const what = removal(review) ?? '';
  const found = statefulSets ?? { outcome: 'unavailable', reason: 'no look-up was made' };

  let violation: Violation;
  let unverified = false;
  let mode = settings.rules['service-protection'];
  if (found.outcome === 'unavailable') {
    const problem = `could not list the StatefulSets in namespace "${review.namespace}" to check that no replicated database uses Service "${review.name}": ${found.reason}.`;
    if (settings.lookupFailureMode === 'warn') {
      const warning = `${what}: ${problem}`;
      return {
        ...allow,
        findings: [{ check: 'service-protection', outcome: 'warn', problem, warning, unverified: true }],
        warnings: [warning],
      };
    }
    // Failing closed is the platform team's choice (lookupFailureMode), whatever the rule's mode.
    mode = 'enforce';
    violation = { rule: 'service-protection', problem, fix: LIST_FIX };
    unverified = true;
  } else {
    // An operator keeps its own Service; a StatefulSet exempt from this rule does not hold it either.
    const exemptions: Exemption[] = [];
    const reasons = new Map<string, string>();
    const served = statefulSetsServedBy(review.name, found.statefulSets).filter((sts) => {
      const target = detectDatabase(sts);
      if (target && stepAsideReason(sts, target.engine, settings)) return false;
      const exception = exceptionFor(context.exceptions, sts, review.namespace, 'service-protection');
      if (exception) {
        exemptions.push({ exception: exception.name, rule: 'service-protection' });
        reasons.set(exception.name, exception.reason);
      }
      return !exception;
    });
    if (served.length === 0) {
      if (exemptions.length === 0) return allow;
      const names = [...new Set(exemptions.map((e) => e.exception))];
      const warning = `${what} [service-protection] waived by exception ${names.map((n) => `"${n}"`).join(', ')}`;
      return {
        ...allow,
        findings: names.map((name) => ({
          check: 'service-protection',
          outcome: 'waived',
          problem: `${what} would take away the headless Service of a replicated database.`,
          warning,
          exception: { name, reason: reasons.get(name) ?? '' },
        })),
        warnings: [warning],
        exemptions,
        auditAnnotations: { exception: names.map((n) => `${n}:service-protection`).join(',') },
      };
    }
    violation = protectionViolation(review, served);
  }

  const { problem, fix } = violation;
  const flag = unverified ? { unverified: true as const } : {};
  if (mode === 'warn') {
    const warning = `${what} [${violation.rule}]: ${problem}`;
    return {
      ...allow,
      findings: [{ check: 'service-protection', outcome: 'warn', problem, fix, warning, ...flag }],
      warnings: [warning],
    };
  }
  return {
    allowed: false,
    violations: [violation],
    findings: [{ check: 'service-protection', outcome: 'deny', problem, fix, ...flag }],
    warnings: [],
    message: `sts-guard denied ${what}.\n1. [${violation.rule}] ${violation.problem}\n   Fix: ${violation.fix}`,
  };
}
