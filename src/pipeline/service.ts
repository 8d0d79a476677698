import {
  clientRoutingNeedsStatefulSets,
  type Decision,
  type ServiceReview,
  type StatefulSetListLookup,
  serviceProtectionNeedsStatefulSets,
  validateClientRouting,
  validateServiceChange,
} from '../policy/index.js';
import type { LookupOutcome, ReviewContext } from './ports.js';

/** What the validating stage decided about a Service. */
export interface ServiceValidation {
  decision: Decision;
  lookups: LookupOutcome[];
}

const UNCONFIGURED: StatefulSetListLookup = {
  outcome: 'unavailable',
  reason: 'StatefulSet look-ups are not configured',
};

/** Two decisions about one object: denied when either denies, every finding, warning, waiver and annotation kept. */
export function combined(a: Decision, b: Decision): Decision {
  const denied = [a, b].filter((d) => !d.allowed);
  const exemptions = [...(a.exemptions ?? []), ...(b.exemptions ?? [])];
  const annotations = { ...a.auditAnnotations, ...b.auditAnnotations };
  if (a.auditAnnotations?.exception && b.auditAnnotations?.exception) {
    annotations.exception = `${a.auditAnnotations.exception},${b.auditAnnotations.exception}`;
  }
  return {
    allowed: denied.length === 0,
    violations: [...a.violations, ...b.violations],
    findings: [...a.findings, ...b.findings],
    warnings: [...a.warnings, ...b.warnings],
    message: denied.map((d) => d.message).join('\n'),
    ...(exemptions.length > 0 ? { exemptions } : {}),
    ...(Object.keys(annotations).length > 0 ? { auditAnnotations: annotations } : {}),
  };
}

/**
 * A Service CREATE, UPDATE or DELETE: when it takes a headless Service away (service-protection)
 * or starts balancing over pods (client-routing), one LIST of the namespace's StatefulSets serves
 * both rules.
 */
export async function validateServiceReview(
  review: ServiceReview,
  ctx: ReviewContext,
): Promise<ServiceValidation> {
  const { settings } = ctx;
  const needed =
    serviceProtectionNeedsStatefulSets(review, settings) || clientRoutingNeedsStatefulSets(review, settings);
  if (!needed) return { decision: validateServiceChange(review, settings), lookups: [] };
  const statefulSets = ctx.statefulSets ? await ctx.statefulSets.list(review.namespace) : UNCONFIGURED;
  const context = { exceptions: ctx.exceptions?.current() };
  const protection = validateServiceChange(review, settings, statefulSets, context);
  const routing = validateClientRouting(review, settings, statefulSets, context);
  // A LIST has no not-found: an empty namespace is a successful look-up.
  return { decision: combined(protection, routing), lookups: [statefulSets.outcome] };
}
