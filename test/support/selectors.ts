/**
 * Which objects a selector selects, with the semantics of the kind that holds it. Kubernetes has
 * two selector shapes and three answers for an absent one, so each helper is named for its kind.
 * Matching a metav1.LabelSelector is the policy's own `selectorMatches` (what sts-guard applies to
 * exceptions), not a second implementation.
 */
import type { V1LabelSelector } from '@kubernetes/client-node';
import { type LabelSelector, selectorMatches } from '../../src/policy/exceptions.js';

type Labels = Record<string, string> | undefined;

/**
 * A Service's `spec.selector`, a plain map: every pair must be on the Pod. An absent or empty
 * selector selects no Pods (the Service's endpoints are then managed by hand).
 */
export function serviceSelectorSelects(
  selector: Record<string, string> | undefined,
  labels: Labels,
): boolean {
  const pairs = Object.entries(selector ?? {});
  return pairs.length > 0 && pairs.every(([key, value]) => labels?.[key] === value);
}

/**
 * An admission webhook's `namespaceSelector` or `objectSelector` (metav1.LabelSelector): absent
 * means the empty selector, which selects everything.
 */
export function webhookSelectorSelects(selector: V1LabelSelector | undefined, labels: Labels): boolean {
  return selectorMatches((selector ?? {}) as LabelSelector, labels ?? {});
}

/**
 * A Pod selector (metav1.LabelSelector) of a workload, a PodDisruptionBudget (policy/v1), a
 * NetworkPolicy, a pod-affinity term or a topology spread constraint: a null selector selects no
 * Pods, an empty one (`{}`) every Pod of the namespace.
 */
export function podSelectorSelects(selector: V1LabelSelector | undefined, labels: Labels): boolean {
  return selector !== undefined && selectorMatches(selector as LabelSelector, labels ?? {});
}
