import { isDeepStrictEqual } from 'node:util';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ReplicaSetWiring } from '../engines/index.js';
import { exceptionFor } from './exceptions.js';
import { type DatabaseFacts, databaseFacts, type InspectedDatabase, inspectedFacts } from './facts.js';
import { STEPPED_ASIDE_ANNOTATION } from './owners.js';
import type { CheckId, RuleId, RuleMode } from './rules.js';
import type {
  Decision,
  Exemption,
  Finding,
  PolicyContext,
  PolicySettings,
  ServiceLookup,
  StatefulSetReview,
  Violation,
} from './types.js';

/** The audit annotation naming the exceptions that waived a rule for the reviewed object. */
export const EXCEPTION_ANNOTATION = 'exception';

const allowed = (): Decision => ({ allowed: true, violations: [], findings: [], warnings: [], message: '' });

/** Admitted, left to its controller: the reason goes to the API server's audit log. */
export const steppedAsideDecision = (reason: string): Decision => ({
  ...allowed(),
  auditAnnotations: { [STEPPED_ASIDE_ANNOTATION]: reason },
});

/**
 * The Service the edge must look up before judging, or undefined when the decision does not
 * depend on one (one replica, rule off, stepped aside, no serviceName).
 */
export function headlessServiceFor(
  facts: DatabaseFacts | undefined,
  settings: PolicySettings,
): string | undefined {
  if (!facts || facts.steppedAside || settings.rules['headless-service'] === 'off') return undefined;
  if (facts.replicas <= 1) return undefined;
  return facts.statefulSet.spec?.serviceName || undefined;
}

/** The same, from the review (the policy's review-in form). */
export function headlessServiceToLookUp(
  review: StatefulSetReview,
  settings: PolicySettings,
): string | undefined {
  return headlessServiceFor(databaseFacts(review, settings), settings);
}

/**
 * The ConfigMaps (in the review's namespace) the edge must read before judging or mutating: those
 * holding a config file the database server is started with (`mongod --config`). Empty for
 * nearly every StatefulSet.
 */
export function configMapsToLookUp(review: StatefulSetReview, settings: PolicySettings): string[] {
  return [...(databaseFacts(review, settings)?.configMapNames ?? [])];
}

function headlessServiceYaml(db: InspectedDatabase, name: string) {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: db.namespace },
    spec: {
      clusterIP: 'None',
      // Members must resolve each other before they are Ready, or the set never forms.
      publishNotReadyAddresses: true,
      selector: db.statefulSet.spec?.selector?.matchLabels ?? {},
      ports: [{ name: db.target.engine.id, port: db.server.port }],
    },
  };
  return stringify(service).trimEnd();
}

/** A finding that depends on a rule's mode: enforced ones deny, the others warn. */
interface RuleFinding {
  rule: RuleId;
  mode: RuleMode;
  problem: string;
  fix: string;
  unverified?: true;
}

type Found = { rule: RuleFinding } | { warning: Finding } | undefined;

const adviceFinding = (check: CheckId, name: string, problem: string): { warning: Finding } => ({
  warning: { check, outcome: 'warn', problem, warning: `${name}: ${problem}` },
});

function headlessServiceFinding(
  db: InspectedDatabase,
  lookup: ServiceLookup | undefined,
  settings: PolicySettings,
): Found {
  const serviceName = db.statefulSet.spec?.serviceName;
  const mode = settings.rules['headless-service'];
  if (!serviceName) {
    const name = `${db.statefulSet.metadata?.name ?? 'database'}-headless`;
    return {
      rule: {
        rule: 'headless-service',
        mode,
        problem: 'spec.serviceName is empty, so members get no stable DNS names to find each other.',
        fix: `set spec.serviceName: ${name} and create this headless Service before the StatefulSet (first in the file, or apply again once it exists):\n${headlessServiceYaml(db, name)}`,
      },
    };
  }
  const outcome = lookup ?? { outcome: 'unavailable', reason: 'no look-up was made' };
  switch (outcome.outcome) {
    case 'found': {
      const clusterIP = outcome.service.spec?.clusterIP;
      if (clusterIP === 'None') {
        if (outcome.service.spec?.publishNotReadyAddresses) return undefined;
        // The bootstrap counts members by the Service's DNS records; a not-ready pod would have none.
        // Within 256 characters with the StatefulSet's name in front (see validate.test.ts).
        return adviceFinding(
          'publish-not-ready-addresses',
          db.name,
          `Service "${serviceName}" does not set publishNotReadyAddresses: true: members not yet Ready have no DNS record, so they cannot find each other and the set is never initiated. Add it (in place).`,
        );
      }
      const yaml = headlessServiceYaml(db, serviceName);
      // A manifest without clusterIP only needs the field; a live Service's clusterIP is immutable.
      const fix = clusterIP
        ? `clusterIP cannot be changed in place: delete Service "${serviceName}" and create it headless:\n${yaml}`
        : `add clusterIP: None to Service "${serviceName}" (if it already exists, clusterIP cannot change in place: delete and recreate it):\n${yaml}`;
      return {
        rule: {
          rule: 'headless-service',
          mode,
          problem: `spec.serviceName "${serviceName}" names a Service with clusterIP ${clusterIP ?? '(unset, so one is allocated)'}; members need a headless Service (clusterIP: None) for stable DNS.`,
          fix,
        },
      };
    }
    case 'not-found':
      return {
        rule: {
          rule: 'headless-service',
          mode,
          problem: `spec.serviceName "${serviceName}" names no Service in namespace "${db.namespace}".`,
          // The API server reviews each object of an apply as it arrives: a Service later in the
          // same file does not exist yet when the StatefulSet is judged.
          fix: `create this headless Service before the StatefulSet (first in the file, or apply again once it exists):\n${headlessServiceYaml(db, serviceName)}`,
        },
      };
    case 'unavailable': {
      const problem = `could not verify that Service "${db.namespace}/${serviceName}" is headless: ${outcome.reason}.`;
      if (settings.lookupFailureMode === 'warn')
        return unverifiedWarning('headless-service', db.name, problem);
      // Failing closed is the platform team's choice (lookupFailureMode), whatever the rule's mode.
      return {
        rule: {
          rule: 'headless-service',
          mode: 'enforce',
          problem,
          fix: 'retry once sts-guard can reach the Kubernetes API (in-cluster ServiceAccount or KUBECONFIG) with get on services; see its logs.',
          unverified: true,
        },
      };
    }
  }
}

const unverifiedWarning = (check: RuleId, name: string, problem: string): { warning: Finding } => ({
  warning: { check, outcome: 'warn', problem, warning: `${name}: ${problem}`, unverified: true },
});

/** The replica-set finding for a server that must run as a replica set. */
function replicaSetFinding(wiring: ReplicaSetWiring, db: InspectedDatabase, settings: PolicySettings): Found {
  const mode = settings.rules['replica-set'];
  const { engine, container } = db.target;
  switch (wiring.state) {
    case 'member':
      return undefined;
    case 'standalone':
      return {
        rule: {
          rule: 'replica-set',
          mode,
          problem: `container "${container.name}" starts ${engine.displayName} ${engine.wording.standalone(wiring.form)}, so each of the ${db.replicas} pods keeps its own, different data.`,
          fix: wiring.fix(engine.wording.suggestedReplicaSetName),
        },
      };
    case 'unknown': {
      const problem = engine.wording.unknownWiring(wiring.reason);
      // A look-up that failed is the platform team's failure mode to decide, as for the Service.
      if (wiring.lookupFailed && settings.lookupFailureMode === 'warn') {
        return unverifiedWarning('replica-set', db.name, problem);
      }
      return {
        rule: {
          rule: 'replica-set',
          mode: wiring.lookupFailed ? 'enforce' : mode,
          problem,
          fix: wiring.lookupFailed
            ? 'retry once sts-guard can reach the Kubernetes API with get on configmaps; see its logs.'
            : `container "${container.name}": ${engine.wording.unknownWiringFix}`,
          ...(wiring.lookupFailed ? { unverified: true as const } : {}),
        },
      };
    }
  }
}

function softFindings(statefulSet: V1StatefulSet, name: string, replicas: number): Finding[] {
  const findings: Finding[] = [];
  if (replicas > 1 && replicas % 2 === 0) {
    findings.push(
      adviceFinding(
        'member-count',
        name,
        `${replicas} replicas survive ${(replicas - 2) / 2} member failure(s), no more than ${replicas - 1} would; use an odd number for a fault-tolerant majority.`,
      ).warning,
    );
  }
  const retention = statefulSet.spec?.persistentVolumeClaimRetentionPolicy;
  const deletes = (['whenDeleted', 'whenScaled'] as const).filter((k) => retention?.[k] === 'Delete');
  if (deletes.length > 0) {
    findings.push(
      adviceFinding(
        'volume-retention',
        name,
        `persistentVolumeClaimRetentionPolicy ${deletes.map((k) => `${k}: Delete`).join(', ')} deletes database volumes; use Retain.`,
      ).warning,
    );
  }
  return findings;
}

function denialMessage(db: InspectedDatabase, violations: Violation[]): string {
  const header = `sts-guard denied ${db.name}: ${db.target.engine.displayName} with ${db.replicas} replicas must run as a replica set behind a headless Service.`;
  const items = violations.map(
    (v, i) => `${i + 1}. [${v.rule}] ${v.problem}\n   Fix: ${v.fix.replaceAll('\n', '\n     ')}`,
  );
  return [header, ...items].join('\n');
}

const waivedAnnotations = (exemptions: Exemption[]): Pick<Decision, 'exemptions' | 'auditAnnotations'> =>
  exemptions.length > 0
    ? {
        exemptions,
        auditAnnotations: {
          [EXCEPTION_ANNOTATION]: [...new Set(exemptions.map((e) => `${e.exception}:${e.rule}`))].join(','),
        },
      }
    : {};

/**
 * The validating decision for a database StatefulSet whose facts are known. Pure: the Service
 * look-up (when `headlessServiceFor` asked for one) is passed in, with the exceptions in force.
 */
export function judgeStatefulSet(
  db: InspectedDatabase,
  settings: PolicySettings,
  lookup: ServiceLookup | undefined,
  context: Pick<PolicyContext, 'exceptions'> = {},
): Decision {
  if (db.steppedAside) return steppedAsideDecision(db.steppedAside);
  const { review, statefulSet, name } = db;
  const ruleFindings: RuleFinding[] = [];
  // Warnings found on the way (unverifiable look-ups, advice), in the order they are found.
  const early: Finding[] = [];
  const collect = (found: Found) => {
    if (!found) return;
    if ('rule' in found) ruleFindings.push(found.rule);
    else early.push(found.warning);
  };
  if (db.replicas > 1) {
    if (settings.rules['replica-set'] !== 'off')
      collect(replicaSetFinding(db.server.replicaSet, db, settings));
    if (settings.rules['headless-service'] !== 'off') collect(headlessServiceFinding(db, lookup, settings));
  }

  // Platform exceptions waive a rule's finding for the StatefulSets they match, whatever its mode.
  const exemptions: Exemption[] = [];
  const waived: Finding[] = [];
  const kept = ruleFindings.filter((f) => {
    const exception = exceptionFor(context.exceptions, statefulSet, review.namespace, f.rule);
    if (!exception) return true;
    exemptions.push({ exception: exception.name, rule: f.rule });
    waived.push({
      check: f.rule,
      outcome: 'waived',
      problem: f.problem,
      fix: f.fix,
      exception: { name: exception.name, reason: exception.reason },
      // The finding itself stays out: with the reason it would pass the 256 characters kubectl shows.
      warning: `${name} [${f.rule}] waived by exception "${exception.name}" (${exception.reason})`,
    });
    return false;
  });

  const warned: Finding[] = kept
    .filter((f) => f.mode === 'warn')
    .map((f) => ({
      check: f.rule,
      outcome: 'warn',
      problem: f.problem,
      fix: f.fix,
      warning: `${name} [${f.rule}]: ${f.problem}`,
    }));
  const enforced = kept.filter((f) => f.mode === 'enforce');
  const advice = [...early, ...waived, ...warned, ...softFindings(statefulSet, name, db.replicas)];
  const warningsOf = (findings: Finding[]) =>
    findings.map((f) => f.warning).filter((w): w is string => w !== undefined);
  const annotations = waivedAnnotations(exemptions);

  if (enforced.length === 0) {
    return { ...allowed(), findings: advice, warnings: warningsOf(advice), ...annotations };
  }
  const denials: Finding[] = enforced.map((f) => ({
    check: f.rule,
    outcome: 'deny',
    problem: f.problem,
    fix: f.fix,
    ...(f.unverified ? { unverified: true } : {}),
  }));

  // A metadata-only update of an object that already violates must still pass, so that
  // finalizers and labels can be cleaned up; only spec changes are held to the rules.
  if (review.operation === 'UPDATE' && isDeepStrictEqual(review.oldObject?.spec, statefulSet.spec)) {
    const held: Finding[] = denials.map((f) => ({
      ...f,
      outcome: 'warn',
      warning: `${name} [${f.check}] (existing, spec unchanged): ${f.problem}`,
    }));
    const findings = [...held, ...advice];
    return { ...allowed(), findings, warnings: warningsOf(findings), ...annotations };
  }
  const violations = enforced.map((f): Violation => ({ rule: f.rule, problem: f.problem, fix: f.fix }));
  return {
    allowed: false,
    violations,
    findings: [...denials, ...advice],
    warnings: warningsOf(advice),
    message: denialMessage(db, violations),
    ...annotations,
  };
}

/**
 * The validating decision for a StatefulSet review (the policy's review-in form): the facts are
 * worked out here, from the ConfigMaps the edge read (`configMapsToLookUp`); the Service look-up,
 * when `headlessServiceToLookUp` asked for one, is passed in with the exceptions in force.
 */
export function validateStatefulSet(
  review: StatefulSetReview,
  settings: PolicySettings,
  lookup?: ServiceLookup,
  context: PolicyContext = {},
): Decision {
  const db = inspectedFacts(review, settings, context.configMaps);
  return db ? judgeStatefulSet(db, settings, lookup, context) : allowed();
}
