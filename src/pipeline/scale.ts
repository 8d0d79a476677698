import {
  type Decision,
  planScale,
  type ScaleReview,
  type StatefulSetLookup,
  scaleDecision,
  statefulSetToLookUpForScale,
} from '../policy/index.js';
import type { LookupOutcome, ReviewContext } from './ports.js';
import { validateStatefulSetReview } from './statefulset.js';

/** What the validating stage decided about a scale. */
export interface ScaleValidation {
  decision: Decision;
  lookups: LookupOutcome[];
}

const UNCONFIGURED: StatefulSetLookup = {
  outcome: 'unavailable',
  reason: 'StatefulSet look-ups are not configured',
};

/**
 * statefulsets/scale (`kubectl scale`, an autoscaler): read the StatefulSet, apply the Scale's
 * replica count, and judge the result as the StatefulSet update it amounts to, through the same
 * stage as any StatefulSet update (its look-ups included).
 */
export async function validateScaleReview(review: ScaleReview, ctx: ReviewContext): Promise<ScaleValidation> {
  const target = statefulSetToLookUpForScale(review, ctx.settings);
  const statefulSet: StatefulSetLookup | undefined = target
    ? ctx.statefulSets
      ? await ctx.statefulSets.get(target.namespace, target.name)
      : UNCONFIGURED
    : undefined;
  const plan = planScale(review, ctx.settings, statefulSet);
  const read = statefulSet ? [statefulSet.outcome] : [];
  if ('decided' in plan) return { decision: plan.decided, lookups: read };
  const judged = await validateStatefulSetReview(plan.scaled, ctx);
  return { decision: scaleDecision(review, plan, judged.decision), lookups: [...read, ...judged.lookups] };
}
