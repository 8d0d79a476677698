import type { V1Scale, V1StatefulSet } from '@kubernetes/client-node';
import { describe } from './detect.js';
import type {
  Decision,
  Operation,
  PolicyContext,
  PolicySettings,
  RuleId,
  ServiceLookup,
  StatefulSetReview,
} from './types.js';
import { validateStatefulSet } from './validate.js';

/**
 * A review of `statefulsets/scale` (`kubectl scale`, a HorizontalPodAutoscaler): the object is an
 * autoscaling/v1 Scale, which carries the replica count but not the pod template the rules read.
 */
export interface ScaleReview {
  operation: Operation;
  namespace: string;
  /** The StatefulSet being scaled: `request.name`, or the Scale's own name. */
  name: string;
  object?: V1Scale | undefined;
  oldObject?: V1Scale | undefined;
}

/** What the edge found when it read the StatefulSet a Scale belongs to. */
export type StatefulSetLookup =
  | { outcome: 'found'; statefulSet: V1StatefulSet }
  | { outcome: 'not-found' }
  | { outcome: 'unavailable'; reason: string };

/** The StatefulSet rules a scale can break: both are about running more than one member. */
const SCALE_RULES = ['replica-set', 'headless-service'] as const satisfies readonly RuleId[];

/**
 * The replica count a Scale asks for. autoscaling/v1 omits `spec.replicas` when it is 0
 * (`omitempty`), so absent means 0 here, unlike a StatefulSet's, where absent means 1.
 */
export function scaleReplicas(scale: V1Scale | undefined): number {
  const replicas = scale?.spec?.replicas;
  return typeof replicas === 'number' ? replicas : 0;
}

/**
 * The StatefulSet the edge must read before calling `validateScale`, or undefined when the
 * decision does not depend on it: scaling to 0 or 1 never needs a replica set, so it is always
 * admitted (and stays the way out of a denial even while the Kubernetes API is unreachable).
 */
export function statefulSetToLookUpForScale(
  review: ScaleReview,
  settings: PolicySettings,
): { namespace: string; name: string } | undefined {
  if (review.operation !== 'UPDATE' && review.operation !== 'CREATE') return undefined;
  if (!review.object || !review.name) return undefined;
  if (SCALE_RULES.every((rule) => settings.rules[rule] === 'off')) return undefined;
  if (scaleReplicas(review.object) <= 1) return undefined;
  return { namespace: review.namespace, name: review.name };
}

/**
 * The StatefulSet review a scale amounts to: an UPDATE from the StatefulSet as it is to the same
 * object with the Scale's replica count. Scaling changes the spec, so it is held to the rules like
 * any other spec change; scaling to the current count changes nothing and is not.
 */
export function scaledStatefulSetReview(
  review: ScaleReview,
  statefulSet: V1StatefulSet,
): StatefulSetReview & { object: V1StatefulSet } {
  return {
    operation: 'UPDATE',
    namespace: review.namespace,
    oldObject: statefulSet,
    object: {
      ...statefulSet,
      spec: { ...statefulSet.spec, replicas: scaleReplicas(review.object) },
    } as V1StatefulSet,
  };
}

const UNAVAILABLE_FIX =
  'retry once sts-guard can reach the Kubernetes API with get on statefulsets (see its logs); scaling to 1 replica is always admitted.';

const allow = (warnings: string[] = [], findings: Decision['findings'] = []): Decision => ({
  allowed: true,
  violations: [],
  findings,
  warnings,
  message: '',
});

/** A scale review once the StatefulSet is read: decided already, or the StatefulSet update it amounts to. */
export type ScalePlan =
  | { decided: Decision }
  | { scaled: StatefulSetReview & { object: V1StatefulSet }; statefulSet: V1StatefulSet; replicas: number };

/**
 * What a scale amounts to, given the StatefulSet the edge read (`statefulSetToLookUpForScale`):
 * admitted outright (0 or 1 replicas, a StatefulSet that is gone), refused or warned about when it
 * could not be read, or an update of the StatefulSet to judge like any other.
 */
export function planScale(
  review: ScaleReview,
  settings: PolicySettings,
  statefulSet: StatefulSetLookup | undefined,
): ScalePlan {
  if (!statefulSetToLookUpForScale(review, settings)) return { decided: allow() };
  const replicas = scaleReplicas(review.object);
  const name = `StatefulSet "${review.namespace}/${review.name}"`;
  const found = statefulSet ?? { outcome: 'unavailable', reason: 'no look-up was made' };
  switch (found.outcome) {
    // The API server answers the scale itself with 404; there is nothing to protect.
    case 'not-found':
      return { decided: allow() };
    case 'unavailable': {
      const problem = `could not read ${name} to check scaling it to ${replicas} replicas: ${found.reason}.`;
      const rule = SCALE_RULES.find((r) => settings.rules[r] !== 'off') ?? 'replica-set';
      if (settings.lookupFailureMode === 'warn') {
        return {
          decided: allow(
            [problem],
            [{ check: rule, outcome: 'warn', problem, warning: problem, unverified: true }],
          ),
        };
      }
      // Failing closed is the platform team's choice (lookupFailureMode), as for the Service look-up.
      return {
        decided: {
          allowed: false,
          violations: [{ rule, problem, fix: UNAVAILABLE_FIX }],
          findings: [{ check: rule, outcome: 'deny', problem, fix: UNAVAILABLE_FIX, unverified: true }],
          warnings: [],
          message: `sts-guard denied scaling ${name} to ${replicas} replicas.\n1. [${rule}] ${problem}\n   Fix: ${UNAVAILABLE_FIX}`,
        },
      };
    }
    case 'found': {
      const scaled = scaledStatefulSetReview(review, found.statefulSet);
      return { scaled, statefulSet: found.statefulSet, replicas };
    }
  }
}

/** The scaled StatefulSet's decision as the scale's: a denial says why scaling is held to the rules. */
export function scaleDecision(
  review: ScaleReview,
  plan: Extract<ScalePlan, { scaled: unknown }>,
  judged: Decision,
): Decision {
  if (judged.allowed) return judged;
  return {
    ...judged,
    message: `${judged.message}\nScaling to ${plan.replicas} replicas (kubectl scale, an autoscaler) changes spec.replicas, so it is held to the same rules: fix ${describe(plan.statefulSet, review.namespace)} first, or keep it at 1 replica.`,
  };
}

/**
 * The validating decision for a scale (the policy's review-in form): the StatefulSet (from
 * `statefulSetToLookUpForScale`) and, when `headlessServiceToLookUp` of `scaledStatefulSetReview`
 * names one, its Service are read by the caller and passed in.
 */
export function validateScale(
  review: ScaleReview,
  settings: PolicySettings,
  statefulSet: StatefulSetLookup | undefined,
  service?: ServiceLookup,
  context: PolicyContext = {},
): Decision {
  const plan = planScale(review, settings, statefulSet);
  if ('decided' in plan) return plan.decided;
  return scaleDecision(review, plan, validateStatefulSet(plan.scaled, settings, service, context));
}
