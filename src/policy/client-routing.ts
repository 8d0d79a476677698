import { isDeepStrictEqual } from 'node:util';
import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { desiredReplicas, detectDatabase, inspectServer } from './detect.js';
import { exceptionFor } from './exceptions.js';
import type { StatefulSetListLookup } from './service-protection.js';
import type {
  Decision,
  Exemption,
  Operation,
  PolicyContext,
  PolicySettings,
  StatefulSetReview,
} from './types.js';

/**
 * Set on a Service to say it only seeds replica-set-aware clients (their URI names the replica
 * set, so the driver goes on to the PRIMARY by its member name): the client-routing rule then
 * leaves it alone. The bundle's own `mongodb` Service carries it.
 */
export const CLIENT_ROUTING_ANNOTATION = 'sts-guard.io/client-routing';
export const SEED_ONLY = 'seed-only';

/** What the edge found when it listed the Services in a StatefulSet's namespace. */
export type ServiceListLookup =
  | { outcome: 'found'; services: readonly V1Service[] }
  | { outcome: 'unavailable'; reason: string };

/** A CREATE or UPDATE of a v1 Service (the client-routing rule's view of a Service review). */
export interface RoutedServiceReview {
  operation: Operation;
  namespace: string;
  name: string;
  object?: V1Service | undefined;
  oldObject?: V1Service | undefined;
}

/** A Service that load-balances over pods: it has a selector and a cluster IP (or node/LB ports). */
function balancesOverPods(service: V1Service | undefined): boolean {
  const spec = service?.spec;
  if (!spec?.selector || Object.keys(spec.selector).length === 0) return false;
  if (spec.type === 'ExternalName' || spec.clusterIP === 'None') return false;
  return service?.metadata?.annotations?.[CLIENT_ROUTING_ANNOTATION] !== SEED_ONLY;
}

/** True when `service` selects the pods `statefulSet` creates (every selector label matches). */
function selectsPodsOf(service: V1Service, statefulSet: V1StatefulSet): boolean {
  const labels = statefulSet.spec?.template?.metadata?.labels ?? {};
  return Object.entries(service.spec?.selector ?? {}).every(([key, value]) => labels[key] === value);
}

/**
 * The replica-set name and port of a MongoDB StatefulSet with more than one member, else
 * undefined: in every form the engine reads (flags, shell wrapper, Bitnami environment, and a
 * config file when its ConfigMap was read).
 */
function replicatedDatabase(
  statefulSet: V1StatefulSet,
  namespace: string,
  settings: PolicySettings,
  context: PolicyContext,
) {
  if (desiredReplicas(statefulSet) <= 1 || statefulSet.metadata?.deletionTimestamp) return undefined;
  const target = detectDatabase(statefulSet);
  if (!target) return undefined;
  const server = inspectServer(statefulSet, target, namespace, settings.clusterDomain, context.configMaps);
  const wiring = server.replicaSet;
  return wiring.state === 'member' ? { target, replicaSetName: wiring.name, port: server.port } : undefined;
}

/** The warning for one Service over one replicated StatefulSet, with both ways to connect. */
function routingFinding(
  service: V1Service,
  statefulSet: V1StatefulSet,
  namespace: string,
  settings: PolicySettings,
  context: PolicyContext,
): string | undefined {
  if (!balancesOverPods(service) || !selectsPodsOf(service, statefulSet)) return undefined;
  const replicated = replicatedDatabase(statefulSet, namespace, settings, context);
  if (!replicated) return undefined;
  const { target, replicaSetName, port } = replicated;
  const sts = statefulSet.metadata?.name ?? '(unnamed)';
  const headless = statefulSet.spec?.serviceName || `${sts}-headless`;
  const domain = `${headless}.${namespace}.svc.${settings.clusterDomain}`;
  const members = Array.from(
    { length: Math.min(desiredReplicas(statefulSet), 7) },
    (_, i) => `${sts}-${i}.${domain}:${port}`,
  );
  const service_ = `Service "${namespace}/${service.metadata?.name}"`;
  return `${service_} [client-routing]: it load-balances over the pods of StatefulSet "${namespace}/${sts}" (${target.engine.displayName} replica set "${replicaSetName}", ${desiredReplicas(statefulSet)} members), so a client connecting through it lands on any member, SECONDARY included, where writes fail and reads can be stale. Fix: connect with the seed list mongodb://${members.join(',')}/?replicaSet=${replicaSetName}, or with mongodb+srv://${domain}/?replicaSet=${replicaSetName}&tls=false (SRV records need the headless Service's port named "mongodb"). If only replica-set-aware clients use this Service as a seed (replicaSet=${replicaSetName} in their URI), annotate it ${CLIENT_ROUTING_ANNOTATION}=${SEED_ONLY}.`;
}

/**
 * True when a Service review needs the StatefulSets of its namespace for the client-routing rule:
 * a CREATE, or an UPDATE that changes the selector or makes the Service balance over pods.
 */
export function clientRoutingNeedsStatefulSets(
  review: RoutedServiceReview,
  settings: PolicySettings,
): boolean {
  if (settings.rules['client-routing'] === 'off' || review.name === '') return false;
  if (review.operation !== 'CREATE' && review.operation !== 'UPDATE') return false;
  if (!balancesOverPods(review.object)) return false;
  if (review.operation === 'CREATE') return true;
  return (
    !balancesOverPods(review.oldObject) ||
    !isDeepStrictEqual(review.oldObject?.spec?.selector, review.object?.spec?.selector)
  );
}

/**
 * The client-routing decision for a Service CREATE/UPDATE. Pure: the StatefulSets, when
 * `clientRoutingNeedsStatefulSets` asked for them, are listed by the caller and passed in.
 * `warn` (the default) admits with the warning; `enforce` denies.
 */
export function validateClientRouting(
  review: RoutedServiceReview,
  settings: PolicySettings,
  statefulSets?: StatefulSetListLookup,
  context: PolicyContext = {},
): Decision {
  const allow: Decision = { allowed: true, violations: [], warnings: [], message: '' };
  if (!clientRoutingNeedsStatefulSets(review, settings) || !review.object) return allow;
  const mode = settings.rules['client-routing'];
  const found = statefulSets ?? { outcome: 'unavailable', reason: 'no look-up was made' };
  if (found.outcome === 'unavailable') {
    // A warning rule does not block on a failed look-up; an enforced one follows lookupFailureMode.
    if (mode === 'warn' || settings.lookupFailureMode === 'warn') return allow;
    const problem = `could not list the StatefulSets in namespace "${review.namespace}" to check which pods Service "${review.name}" selects: ${found.reason}.`;
    const fix = 'retry once sts-guard can reach the Kubernetes API with list on statefulsets (see its logs).';
    return {
      allowed: false,
      violations: [{ rule: 'client-routing', problem, fix }],
      warnings: [],
      message: `sts-guard denied Service "${review.namespace}/${review.name}".\n1. [client-routing] ${problem}\n   Fix: ${fix}`,
    };
  }
  const service = review.object;
  // A StatefulSet a platform exception exempts from this rule is left out, and the waiver recorded.
  const exemptions: Exemption[] = [];
  const exceptions = new Set<string>();
  const findings = found.statefulSets
    .map((sts) => {
      const finding = routingFinding(service, sts, review.namespace, settings, context);
      const exception = finding && exceptionFor(context.exceptions, sts, review.namespace, 'client-routing');
      if (!exception) return finding;
      exemptions.push({ exception: exception.name, rule: 'client-routing' });
      exceptions.add(exception.name);
      return undefined;
    })
    .filter((f): f is string => f !== undefined);
  const waived: Partial<Decision> =
    exemptions.length > 0
      ? {
          exemptions,
          auditAnnotations: { exception: [...exceptions].map((n) => `${n}:client-routing`).join(',') },
        }
      : {};
  if (findings.length === 0) return { ...allow, ...waived };
  if (mode === 'warn') return { ...allow, warnings: findings, ...waived };
  return {
    ...waived,
    allowed: false,
    violations: findings.map((problem) => ({ rule: 'client-routing', problem, fix: '' })),
    warnings: [],
    message: `sts-guard denied Service "${review.namespace}/${review.name}".\n${findings.map((f, i) => `${i + 1}. ${f}`).join('\n')}`,
  };
}

/**
 * True when a StatefulSet review needs the Services of its namespace for the client-routing rule:
 * a replicated MongoDB being created, scaled above one member, or given new pod labels (a Service
 * may already balance over its pods).
 */
export function clientRoutingNeedsServices(
  review: StatefulSetReview,
  settings: PolicySettings,
  context: PolicyContext = {},
): boolean {
  if (settings.rules['client-routing'] === 'off' || !review.object) return false;
  const replicated = (sts: V1StatefulSet) => replicatedDatabase(sts, review.namespace, settings, context);
  if (replicated(review.object) === undefined) return false;
  if (exceptionFor(context.exceptions, review.object, review.namespace, 'client-routing')) return false;
  if (review.operation === 'CREATE') return true;
  // An UPDATE only when it makes the set replicated or relabels its pods: routine updates list nothing.
  if (review.operation !== 'UPDATE' || !review.oldObject) return false;
  return (
    replicated(review.oldObject) === undefined ||
    !isDeepStrictEqual(
      review.oldObject.spec?.template?.metadata?.labels,
      review.object.spec?.template?.metadata?.labels,
    )
  );
}

/**
 * The client-routing warnings for a StatefulSet CREATE/UPDATE: one per Service of its namespace
 * that load-balances over its pods. Always warnings, whatever the mode: the Service is what is
 * wrong, and it is judged (and, under `enforce`, denied) on its own CREATE/UPDATE.
 */
export function clientRoutingWarnings(
  review: StatefulSetReview,
  settings: PolicySettings,
  services: ServiceListLookup | undefined,
  context: PolicyContext = {},
): string[] {
  if (!clientRoutingNeedsServices(review, settings, context) || !review.object) return [];
  if (services?.outcome !== 'found') return [];
  const statefulSet = review.object;
  return services.services
    .map((service) => routingFinding(service, statefulSet, review.namespace, settings, context))
    .filter((f): f is string => f !== undefined);
}
