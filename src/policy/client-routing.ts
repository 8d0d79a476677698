import { isDeepStrictEqual } from 'node:util';
import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { ServerSettings } from '../engines/index.js';
import { desiredReplicas, detectDatabase, inspectServer } from './detect.js';
import { exceptionFor } from './exceptions.js';
import { type InspectedDatabase, inspectedFacts } from './facts.js';
import type { StatefulSetListLookup } from './service-protection.js';
import type {
  DatabaseTarget,
  Decision,
  Exemption,
  Finding,
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

/** A replicated database: the StatefulSet, its engine and how its members are addressed. */
interface ReplicatedDatabase {
  statefulSet: V1StatefulSet;
  target: DatabaseTarget;
  replicaSetName: string;
  port: number;
}

/**
 * The replica-set name and port of a database StatefulSet with more than one member, from its
 * server settings (every form the engine reads: flags, shell wrapper, environment, and a config
 * file when its ConfigMap was read), else undefined.
 */
function replicated(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget | undefined,
  server: ServerSettings | undefined,
): ReplicatedDatabase | undefined {
  if (!target || !server || desiredReplicas(statefulSet) <= 1 || statefulSet.metadata?.deletionTimestamp) {
    return undefined;
  }
  const wiring = server.replicaSet;
  return wiring.state === 'member'
    ? { statefulSet, target, replicaSetName: wiring.name, port: server.port }
    : undefined;
}

/** The same, for a StatefulSet listed from the namespace (no ConfigMaps read for it). */
function replicatedListed(
  statefulSet: V1StatefulSet,
  namespace: string,
  settings: PolicySettings,
  context: PolicyContext,
): ReplicatedDatabase | undefined {
  if (desiredReplicas(statefulSet) <= 1 || statefulSet.metadata?.deletionTimestamp) return undefined;
  const target = detectDatabase(statefulSet);
  if (!target) return undefined;
  const server = inspectServer(statefulSet, target, namespace, settings.clusterDomain, context.configMaps);
  return replicated(statefulSet, target, server);
}

/** Warnings by everything their text depends on (`routingFinding`); bounded whatever reviews carry. */
const warningsByKey = new Map<string, string>();
const REMEMBERED_WARNINGS = 256;

/**
 * The warning for one Service over one replicated StatefulSet, with both ways to connect.
 * Remembered: every review of the same set over the same Service repeats the same ~900
 * characters (a seed list naming each member, two URIs), and building them was half of the
 * review path's cost on that workload (bench/README.md, issue 21).
 */
function routingFinding(
  service: V1Service,
  database: ReplicatedDatabase,
  namespace: string,
  settings: PolicySettings,
): string | undefined {
  if (!balancesOverPods(service) || !selectsPodsOf(service, database.statefulSet)) return undefined;
  const { statefulSet, target, replicaSetName, port } = database;
  const sts = statefulSet.metadata?.name ?? '(unnamed)';
  const headless = statefulSet.spec?.serviceName || `${sts}-headless`;
  const replicas = desiredReplicas(statefulSet);
  // JSON of the parts, so no two different sets of parts share a key whatever characters they hold.
  const key = JSON.stringify([
    target.engine.id,
    namespace,
    service.metadata?.name,
    sts,
    headless,
    settings.clusterDomain,
    replicas,
    replicaSetName,
    port,
  ]);
  const known = warningsByKey.get(key);
  if (known !== undefined) return known;
  if (warningsByKey.size >= REMEMBERED_WARNINGS) warningsByKey.clear();
  const warning = routingWarning(service, database, { namespace, sts, headless, replicas, settings });
  warningsByKey.set(key, warning);
  return warning;
}

function routingWarning(
  service: V1Service,
  { target, replicaSetName, port }: ReplicatedDatabase,
  where: { namespace: string; sts: string; headless: string; replicas: number; settings: PolicySettings },
): string {
  const { namespace, sts, headless, replicas, settings } = where;
  const srvDomain = `${headless}.${namespace}.svc.${settings.clusterDomain}`;
  const members = Array.from({ length: Math.min(replicas, 7) }, (_, i) => `${sts}-${i}.${srvDomain}:${port}`);
  const words = target.engine.wording.clientRouting({ replicaSetName, members, srvDomain });
  return `Service "${namespace}/${service.metadata?.name}" [client-routing]: it load-balances over the pods of StatefulSet "${namespace}/${sts}" (${target.engine.displayName} replica set "${replicaSetName}", ${replicas} members), so a client connecting through it ${words.risk}. Fix: ${words.connect}. If only replica-set-aware clients use this Service as a seed (${words.seedClients}), annotate it ${CLIENT_ROUTING_ANNOTATION}=${SEED_ONLY}.`;
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
  const allow: Decision = { allowed: true, violations: [], findings: [], warnings: [], message: '' };
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
      findings: [{ check: 'client-routing', outcome: 'deny', problem, fix, unverified: true }],
      warnings: [],
      message: `sts-guard denied Service "${review.namespace}/${review.name}".\n1. [client-routing] ${problem}\n   Fix: ${fix}`,
    };
  }
  const service = review.object;
  // A StatefulSet a platform exception exempts from this rule is left out, and the waiver recorded.
  const exemptions: Exemption[] = [];
  const waivedFindings: Finding[] = [];
  const problems: string[] = [];
  for (const sts of found.statefulSets) {
    // The cheap test first: only StatefulSets whose pods the Service selects are inspected.
    if (!selectsPodsOf(service, sts)) continue;
    const database = replicatedListed(sts, review.namespace, settings, context);
    const problem = database && routingFinding(service, database, review.namespace, settings);
    if (!problem) continue;
    const exception = exceptionFor(context.exceptions, sts, review.namespace, 'client-routing');
    if (!exception) {
      problems.push(problem);
      continue;
    }
    exemptions.push({ exception: exception.name, rule: 'client-routing' });
    waivedFindings.push({
      check: 'client-routing',
      outcome: 'waived',
      problem,
      exception: { name: exception.name, reason: exception.reason },
    });
  }
  const names = [...new Set(exemptions.map((e) => e.exception))];
  const waived: Partial<Decision> =
    exemptions.length > 0
      ? { exemptions, auditAnnotations: { exception: names.map((n) => `${n}:client-routing`).join(',') } }
      : {};
  if (problems.length === 0) return { ...allow, findings: waivedFindings, ...waived };
  if (mode === 'warn') {
    const findings: Finding[] = problems.map((problem) => ({
      check: 'client-routing',
      outcome: 'warn',
      problem,
      warning: problem,
    }));
    return { ...allow, findings: [...findings, ...waivedFindings], warnings: problems, ...waived };
  }
  return {
    ...waived,
    allowed: false,
    violations: problems.map((problem) => ({ rule: 'client-routing', problem, fix: '' })),
    findings: [
      ...problems.map((problem): Finding => ({ check: 'client-routing', outcome: 'deny', problem })),
      ...waivedFindings,
    ],
    warnings: [],
    message: `sts-guard denied Service "${review.namespace}/${review.name}".\n${problems.map((f, i) => `${i + 1}. ${f}`).join('\n')}`,
  };
}

/**
 * True when a StatefulSet review needs the Services of its namespace for the client-routing rule:
 * a replicated database being created, scaled above one member, or given new pod labels (a Service
 * may already balance over its pods).
 */
export function clientRoutingNeedsServicesFor(
  db: InspectedDatabase | undefined,
  settings: PolicySettings,
  context: Pick<PolicyContext, 'exceptions'> = {},
): boolean {
  if (!db || settings.rules['client-routing'] === 'off') return false;
  if (!replicated(db.statefulSet, db.target, db.server)) return false;
  const { review } = db;
  if (exceptionFor(context.exceptions, db.statefulSet, review.namespace, 'client-routing')) return false;
  if (review.operation === 'CREATE') return true;
  // An UPDATE only when it makes the set replicated or relabels its pods: routine updates list nothing.
  if (review.operation !== 'UPDATE' || !review.oldObject) return false;
  return (
    replicatedListed(review.oldObject, review.namespace, settings, { configMaps: db.configMaps }) ===
      undefined ||
    !isDeepStrictEqual(
      review.oldObject.spec?.template?.metadata?.labels,
      db.statefulSet.spec?.template?.metadata?.labels,
    )
  );
}

/**
 * The client-routing findings for a StatefulSet CREATE/UPDATE that `clientRoutingNeedsServicesFor`
 * said needs its namespace's Services: one per Service that load-balances over its pods. Always
 * warnings, whatever the mode: the Service is what is wrong, and it is judged (and, under
 * `enforce`, denied) on its own CREATE/UPDATE.
 */
export function clientRoutingFindings(
  db: InspectedDatabase,
  settings: PolicySettings,
  services: ServiceListLookup,
): Finding[] {
  if (services.outcome !== 'found') return [];
  const database = replicated(db.statefulSet, db.target, db.server);
  if (!database) return [];
  const findings: Finding[] = [];
  for (const service of services.services) {
    const warning = routingFinding(service, database, db.namespace, settings);
    if (warning) findings.push({ check: 'client-routing', outcome: 'warn', problem: warning, warning });
  }
  return findings;
}

/** `clientRoutingNeedsServicesFor`, from the review (the policy's review-in form). */
export function clientRoutingNeedsServices(
  review: StatefulSetReview,
  settings: PolicySettings,
  context: PolicyContext = {},
): boolean {
  return clientRoutingNeedsServicesFor(
    inspectedFacts(review, settings, context.configMaps),
    settings,
    context,
  );
}

/** The warnings of `clientRoutingFindings`, from the review (the policy's review-in form). */
export function clientRoutingWarnings(
  review: StatefulSetReview,
  settings: PolicySettings,
  services: ServiceListLookup | undefined,
  context: PolicyContext = {},
): string[] {
  const db = inspectedFacts(review, settings, context.configMaps);
  if (!db || !services || !clientRoutingNeedsServicesFor(db, settings, context)) return [];
  return clientRoutingFindings(db, settings, services).map((f) => f.problem);
}
