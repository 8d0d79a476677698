import { isDeepStrictEqual } from 'node:util';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ConfigurationForm, ReplicaSetWiring } from '../engines/index.js';
import { describe, desiredReplicas, detectDatabase, inspectServer } from './detect.js';
import { exceptionFor } from './exceptions.js';
import { STEPPED_ASIDE_ANNOTATION, stepAsideReason } from './owners.js';
import type {
  DatabaseTarget,
  Decision,
  Exemption,
  PolicyContext,
  PolicySettings,
  RuleMode,
  ServiceLookup,
  StatefulSetReview,
  Violation,
} from './types.js';

/** The audit annotation naming the exceptions that waived a rule for the reviewed object. */
export const EXCEPTION_ANNOTATION = 'exception';

const SUGGESTED_REPLICA_SET_NAME = 'rs0';

/** The operations whose new object the rules judge. */
function judgesObject(review: StatefulSetReview): review is StatefulSetReview & { object: V1StatefulSet } {
  return (review.operation === 'CREATE' || review.operation === 'UPDATE') && review.object !== undefined;
}

/**
 * The Service the edge must look up before calling `validateStatefulSet`, or undefined when the
 * decision does not depend on one (not a database, one replica, rule off, no serviceName).
 */
export function headlessServiceToLookUp(
  review: StatefulSetReview,
  settings: PolicySettings,
): string | undefined {
  if (!judgesObject(review) || settings.rules['headless-service'] === 'off') return undefined;
  if (desiredReplicas(review.object) <= 1) return undefined;
  const target = detectDatabase(review.object);
  if (!target || stepAsideReason(review.object, target.engine, settings)) return undefined;
  const serviceName = review.object.spec?.serviceName;
  return serviceName ? serviceName : undefined;
}

/**
 * The ConfigMaps (in the review's namespace) the edge must read before calling
 * `validateStatefulSet` or `mutateStatefulSet`: those holding a config file the database server
 * is started with (`mongod --config`). Empty for nearly every StatefulSet.
 */
export function configMapsToLookUp(review: StatefulSetReview, settings: PolicySettings): string[] {
  if (!judgesObject(review)) return [];
  const target = detectDatabase(review.object);
  if (!target || stepAsideReason(review.object, target.engine, settings)) return [];
  const pod = review.object.spec?.template?.spec ?? { containers: [target.container] };
  return target.engine.configMapsToRead(pod, target.container);
}

function headlessServiceYaml(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget & { port: number },
  name: string,
  namespace: string,
) {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      clusterIP: 'None',
      // Members must resolve each other before they are Ready, or the set never forms.
      publishNotReadyAddresses: true,
      selector: statefulSet.spec?.selector?.matchLabels ?? {},
      ports: [{ name: target.engine.id, port: target.port }],
    },
  };
  return stringify(service).trimEnd();
}

function headlessServiceViolation(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget & { port: number },
  namespace: string,
  lookup: ServiceLookup | undefined,
  settings: PolicySettings,
): { violation?: Violation; mode?: RuleMode; unverifiable?: string; advice?: string } {
  const serviceName = statefulSet.spec?.serviceName;
  const stsName = statefulSet.metadata?.name ?? 'database';
  if (!serviceName) {
    const name = `${stsName}-headless`;
    return {
      violation: {
        rule: 'headless-service',
        problem: 'spec.serviceName is empty, so members get no stable DNS names to find each other.',
        fix: `set spec.serviceName: ${name} and create this headless Service:\n${headlessServiceYaml(statefulSet, target, name, namespace)}`,
      },
    };
  }
  const outcome = lookup ?? { outcome: 'unavailable', reason: 'no look-up was made' };
  switch (outcome.outcome) {
    case 'found': {
      const clusterIP = outcome.service.spec?.clusterIP;
      if (clusterIP === 'None') {
        if (outcome.service.spec?.publishNotReadyAddresses) return {};
        // The bootstrap counts members by the Service's DNS records; a not-ready pod would have none.
        return {
          // Within 256 characters with the StatefulSet's name in front (see validate.test.ts).
          advice: `Service "${serviceName}" does not set publishNotReadyAddresses: true: members not yet Ready have no DNS record, so they cannot find each other and the set is never initiated. Add it (in place).`,
        };
      }
      const yaml = headlessServiceYaml(statefulSet, target, serviceName, namespace);
      // A manifest without clusterIP only needs the field; a live Service's clusterIP is immutable.
      const fix = clusterIP
        ? `clusterIP cannot be changed in place: delete Service "${serviceName}" and create it headless:\n${yaml}`
        : `add clusterIP: None to Service "${serviceName}" (if it already exists, clusterIP cannot change in place: delete and recreate it):\n${yaml}`;
      return {
        violation: {
          rule: 'headless-service',
          problem: `spec.serviceName "${serviceName}" names a Service with clusterIP ${clusterIP ?? '(unset, so one is allocated)'}; members need a headless Service (clusterIP: None) for stable DNS.`,
          fix,
        },
      };
    }
    case 'not-found':
      return {
        violation: {
          rule: 'headless-service',
          problem: `spec.serviceName "${serviceName}" names no Service in namespace "${namespace}".`,
          fix: `create this headless Service (in the same apply is fine):\n${headlessServiceYaml(statefulSet, target, serviceName, namespace)}`,
        },
      };
    case 'unavailable': {
      const problem = `could not verify that Service "${namespace}/${serviceName}" is headless: ${outcome.reason}.`;
      if (settings.lookupFailureMode === 'warn') return { unverifiable: problem };
      // Failing closed is the platform team's choice (lookupFailureMode), whatever the rule's mode.
      return {
        mode: 'enforce',
        violation: {
          rule: 'headless-service',
          problem,
          fix: 'retry once sts-guard can reach the Kubernetes API (in-cluster ServiceAccount or KUBECONFIG) with get on services; see its logs.',
        },
      };
    }
  }
}

function softWarnings(statefulSet: V1StatefulSet, name: string): string[] {
  const warnings: string[] = [];
  const replicas = desiredReplicas(statefulSet);
  if (replicas > 1 && replicas % 2 === 0) {
    warnings.push(
      `${name}: ${replicas} replicas survive ${(replicas - 2) / 2} member failure(s), no more than ${replicas - 1} would; use an odd number for a fault-tolerant majority.`,
    );
  }
  const retention = statefulSet.spec?.persistentVolumeClaimRetentionPolicy;
  const deletes = (['whenDeleted', 'whenScaled'] as const).filter((k) => retention?.[k] === 'Delete');
  if (deletes.length > 0) {
    warnings.push(
      `${name}: persistentVolumeClaimRetentionPolicy ${deletes.map((k) => `${k}: Delete`).join(', ')} deletes database volumes; use Retain.`,
    );
  }
  return warnings;
}

function denialMessage(
  name: string,
  target: DatabaseTarget,
  replicas: number,
  violations: Violation[],
): string {
  const header = `sts-guard denied ${name}: ${target.engine.displayName} with ${replicas} replicas must run as a replica set behind a headless Service.`;
  const items = violations.map(
    (v, i) => `${i + 1}. [${v.rule}] ${v.problem}\n   Fix: ${v.fix.replaceAll('\n', '\n     ')}`,
  );
  return [header, ...items].join('\n');
}

/** How a server that is no replica-set member was told to run, by the form it is configured in. */
const STANDALONE_BECAUSE: Record<ConfigurationForm, string> = {
  flags: 'without --replSet',
  shell: 'from a shell script without --replSet',
  'config-file': 'from a config file without replication.replSetName',
  environment: 'without MONGODB_REPLICA_SET_MODE',
};

const UNKNOWN_WIRING_FIX =
  "start mongod with a literal --replSet <name> in the container's command or args, or set replication.replSetName in a config file kept in a ConfigMap (sts-guard reads ConfigMaps, never Secrets); if this StatefulSet is known to be right, ask the platform team for an exception.";

/** The replica-set finding for a server that must run as a replica set, and the mode it is held to. */
function replicaSetFinding(
  wiring: ReplicaSetWiring,
  target: DatabaseTarget,
  replicas: number,
  settings: PolicySettings,
): { violation: Violation; mode: RuleMode } | { unverifiable: string } | undefined {
  const mode = settings.rules['replica-set'];
  switch (wiring.state) {
    case 'member':
      return undefined;
    case 'standalone':
      return {
        mode,
        violation: {
          rule: 'replica-set',
          problem: `container "${target.container.name}" starts ${target.engine.displayName} ${STANDALONE_BECAUSE[wiring.form]}, so each of the ${replicas} pods keeps its own, different data.`,
          fix: wiring.fix(SUGGESTED_REPLICA_SET_NAME),
        },
      };
    case 'unknown': {
      const problem = `could not tell whether mongod runs with --replSet: ${wiring.reason}.`;
      // A look-up that failed is the platform team's failure mode to decide, as for the Service.
      if (wiring.lookupFailed && settings.lookupFailureMode === 'warn') return { unverifiable: problem };
      return {
        mode: wiring.lookupFailed ? 'enforce' : mode,
        violation: {
          rule: 'replica-set',
          problem,
          fix: wiring.lookupFailed
            ? 'retry once sts-guard can reach the Kubernetes API with get on configmaps; see its logs.'
            : `container "${target.container.name}": ${UNKNOWN_WIRING_FIX}`,
        },
      };
    }
  }
}

/**
 * The validating decision for a StatefulSet review. Pure: the Service look-up, when
 * `headlessServiceToLookUp` asked for one, and the ConfigMaps `configMapsToLookUp` named, are
 * read by the caller and passed in, with the exceptions in force.
 */
export function validateStatefulSet(
  review: StatefulSetReview,
  settings: PolicySettings,
  lookup?: ServiceLookup,
  context: PolicyContext = {},
): Decision {
  const allow: Decision = { allowed: true, violations: [], warnings: [], message: '' };
  if (!judgesObject(review)) return allow;
  const statefulSet = review.object;
  const found = detectDatabase(statefulSet);
  if (!found) return allow;
  const steppedAside = stepAsideReason(statefulSet, found.engine, settings);
  if (steppedAside) return { ...allow, auditAnnotations: { [STEPPED_ASIDE_ANNOTATION]: steppedAside } };

  const name = describe(statefulSet, review.namespace);
  const replicas = desiredReplicas(statefulSet);
  const findings: Array<{ violation: Violation; mode: RuleMode }> = [];
  const warnings: string[] = [];

  if (replicas > 1) {
    const server = inspectServer(
      statefulSet,
      found,
      review.namespace,
      settings.clusterDomain,
      context.configMaps,
    );
    const target = { ...found, port: server.port };
    if (settings.rules['replica-set'] !== 'off') {
      const finding = replicaSetFinding(server.replicaSet, target, replicas, settings);
      if (finding && 'unverifiable' in finding) warnings.push(`${name}: ${finding.unverifiable}`);
      else if (finding) findings.push(finding);
    }
    if (settings.rules['headless-service'] !== 'off') {
      const result = headlessServiceViolation(statefulSet, target, review.namespace, lookup, settings);
      if (result.violation) {
        findings.push({
          violation: result.violation,
          mode: result.mode ?? settings.rules['headless-service'],
        });
      }
      if (result.unverifiable) warnings.push(`${name}: ${result.unverifiable}`);
      if (result.advice) warnings.push(`${name}: ${result.advice}`);
    }
  }

  // Platform exceptions waive a rule's finding for the StatefulSets they match, whatever its mode.
  const exemptions: Exemption[] = [];
  const kept = findings.filter(({ violation }) => {
    const exception = exceptionFor(context.exceptions, statefulSet, review.namespace, violation.rule);
    if (!exception) return true;
    exemptions.push({ exception: exception.name, rule: violation.rule });
    // The finding itself stays out: with the reason it would pass the 256 characters kubectl shows.
    warnings.push(
      `${name} [${violation.rule}] waived by exception "${exception.name}" (${exception.reason})`,
    );
    return false;
  });
  const waived: Pick<Decision, 'exemptions' | 'auditAnnotations'> =
    exemptions.length > 0
      ? {
          exemptions,
          auditAnnotations: {
            [EXCEPTION_ANNOTATION]: [...new Set(exemptions.map((e) => `${e.exception}:${e.rule}`))].join(','),
          },
        }
      : {};

  const enforced = kept.filter((f) => f.mode === 'enforce').map((f) => f.violation);
  for (const { violation, mode } of kept) {
    if (mode === 'warn') warnings.push(`${name} [${violation.rule}]: ${violation.problem}`);
  }
  warnings.push(...softWarnings(statefulSet, name));

  if (enforced.length === 0) return { ...allow, warnings, ...waived };

  // A metadata-only update of an object that already violates must still pass, so that
  // finalizers and labels can be cleaned up; only spec changes are held to the rules.
  if (review.operation === 'UPDATE' && isDeepStrictEqual(review.oldObject?.spec, statefulSet.spec)) {
    const held = enforced.map((v) => `${name} [${v.rule}] (existing, spec unchanged): ${v.problem}`);
    return { ...allow, warnings: [...held, ...warnings], ...waived };
  }
  return {
    allowed: false,
    violations: enforced,
    warnings,
    message: denialMessage(name, found, replicas, enforced),
    ...waived,
  };
}
