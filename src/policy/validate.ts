import { isDeepStrictEqual } from 'node:util';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { describe, desiredReplicas, detectDatabase } from './detect.js';
import type {
  DatabaseTarget,
  Decision,
  PolicySettings,
  RuleMode,
  ServiceLookup,
  StatefulSetReview,
  Violation,
} from './types.js';

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
  if (desiredReplicas(review.object) <= 1 || !detectDatabase(review.object)) return undefined;
  const serviceName = review.object.spec?.serviceName;
  return serviceName ? serviceName : undefined;
}

function headlessServiceYaml(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget,
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
      ports: [{ name: target.engine.id, port: target.engine.port(target.container) }],
    },
  };
  return stringify(service).trimEnd();
}

function headlessServiceViolation(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget,
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
          advice: `Service "${serviceName}" does not set publishNotReadyAddresses: true, so members that are not Ready have no DNS record: they cannot find each other while starting, and the bootstrap hook never initiates the replica set. Add it (it can change in place).`,
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

/**
 * The validating decision for a StatefulSet review. Pure: the Service look-up, when
 * `headlessServiceToLookUp` asked for one, is done by the caller and passed in.
 */
export function validateStatefulSet(
  review: StatefulSetReview,
  settings: PolicySettings,
  lookup?: ServiceLookup,
): Decision {
  const allow: Decision = { allowed: true, violations: [], warnings: [], message: '' };
  if (!judgesObject(review)) return allow;
  const statefulSet = review.object;
  const target = detectDatabase(statefulSet);
  if (!target) return allow;

  const name = describe(statefulSet, review.namespace);
  const replicas = desiredReplicas(statefulSet);
  const found: Array<{ violation: Violation; mode: RuleMode }> = [];
  const warnings: string[] = [];

  if (replicas > 1) {
    if (settings.rules['replica-set'] !== 'off' && !target.engine.replicaSetName(target.container)) {
      found.push({
        mode: settings.rules['replica-set'],
        violation: {
          rule: 'replica-set',
          problem: `container "${target.container.name}" starts ${target.engine.displayName} without --replSet, so each of the ${replicas} pods keeps its own, different data.`,
          fix: target.engine.replicaSetFix(target.container, SUGGESTED_REPLICA_SET_NAME),
        },
      });
    }
    if (settings.rules['headless-service'] !== 'off') {
      const result = headlessServiceViolation(statefulSet, target, review.namespace, lookup, settings);
      if (result.violation) {
        found.push({ violation: result.violation, mode: result.mode ?? settings.rules['headless-service'] });
      }
      if (result.unverifiable) warnings.push(`${name}: ${result.unverifiable}`);
      if (result.advice) warnings.push(`${name}: ${result.advice}`);
    }
  }

  const enforced = found.filter((f) => f.mode === 'enforce').map((f) => f.violation);
  for (const { violation, mode } of found) {
    if (mode === 'warn') warnings.push(`${name} [${violation.rule}]: ${violation.problem}`);
  }
  warnings.push(...softWarnings(statefulSet, name));

  if (enforced.length === 0) return { ...allow, warnings };

  // A metadata-only update of an object that already violates must still pass, so that
  // finalizers and labels can be cleaned up; only spec changes are held to the rules.
  if (review.operation === 'UPDATE' && isDeepStrictEqual(review.oldObject?.spec, statefulSet.spec)) {
    const held = enforced.map((v) => `${name} [${v.rule}] (existing, spec unchanged): ${v.problem}`);
    return { ...allow, warnings: [...held, ...warnings] };
  }
  return {
    allowed: false,
    violations: enforced,
    warnings,
    message: denialMessage(name, target, replicas, enforced),
  };
}
