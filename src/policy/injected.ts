import type { V1StatefulSet } from '@kubernetes/client-node';

/** Records what sts-guard injected, e.g. `bootstrap-hook,storage`. */
export const INJECTED_ANNOTATION = 'sts-guard.io/injected';
export const INJECTED_BOOTSTRAP_HOOK = 'bootstrap-hook';
export const INJECTED_STORAGE = 'storage';

/** What an earlier mutation of this object injected, from its annotation. */
export function injectedBefore(statefulSet: V1StatefulSet | undefined): string[] {
  const value = statefulSet?.metadata?.annotations?.[INJECTED_ANNOTATION];
  return value ? value.split(',').filter(Boolean) : [];
}
