import type { V1StatefulSet } from '@kubernetes/client-node';
import type { RuleId } from './rules.js';

/** A Kubernetes label selector (metav1.LabelSelector). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}

/**
 * One exception the platform team declared: the StatefulSets it matches (every criterion given
 * must hold) are exempt from the rules it lists. Like Kyverno's PolicyException, it lives where
 * only the platform team writes, never on the workload.
 */
export interface PolicyException {
  name: string;
  /** Why, for the warning and the audit log: a ticket, a migration date. */
  reason: string;
  rules: Array<RuleId | '*'>;
  match: { namespaces?: string[]; names?: string[]; selector?: LabelSelector };
}

export interface ExceptionList {
  exceptions: readonly PolicyException[];
}

export const NO_EXCEPTIONS: ExceptionList = { exceptions: [] };

/** metav1.LabelSelector semantics: every matchLabels pair and every expression must hold. */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const expression of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, expression.key);
    const value = labels[expression.key];
    const values = expression.values ?? [];
    switch (expression.operator) {
      case 'In':
        if (!has || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The first exception that exempts this StatefulSet from `rule`, if any. */
export function exceptionFor(
  list: ExceptionList | undefined,
  statefulSet: V1StatefulSet,
  namespace: string,
  rule: RuleId,
): PolicyException | undefined {
  if (!list || list.exceptions.length === 0) return undefined;
  const name = statefulSet.metadata?.name ?? '';
  const labels = statefulSet.metadata?.labels ?? {};
  return list.exceptions.find(
    ({ rules, match }) =>
      (rules.includes('*') || rules.includes(rule)) &&
      (!match.namespaces || match.namespaces.includes(namespace)) &&
      (!match.names || match.names.includes(name)) &&
      (!match.selector || selectorMatches(match.selector, labels)),
  );
}
