import type { V1PersistentVolumeClaim, V1StatefulSet } from '@kubernetes/client-node';
import type { InitiationWindow } from '../engines/index.js';
import type { DatabaseTarget, MutationLookups, PolicySettings } from './types.js';

/** Set on a StatefulSet to reopen the bootstrap's initiation window once per distinct value. */
export const RESET_ANNOTATION = 'sts-guard.io/reset-replica-set';

/** A window that never opens: the bootstrap joins members but never initiates. */
export const CLOSED_WINDOW: InitiationWindow = Object.freeze({ until: 0, resetToken: '' });

export const isOpen = (window: InitiationWindow, now: number) => window.until > now;

export const isoTime = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

/** The volume claims an earlier StatefulSet of this name left: `<claim template>-<sts>-<ordinal>`. */
function earlierClaims(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget,
  claims: readonly V1PersistentVolumeClaim[],
): string[] {
  const name = statefulSet.metadata?.name;
  if (!name) return [];
  const templates = new Set([
    ...(statefulSet.spec?.volumeClaimTemplates ?? []).map((c) => c.metadata?.name ?? ''),
    `${target.engine.id}-data`,
    `sts-guard-${target.engine.id}-data`,
  ]);
  const suffix = new RegExp(`^(.+)-${name.replaceAll('.', '\\.')}-\\d+$`);
  return claims
    .map((c) => c.metadata?.name ?? '')
    .filter((claim) => templates.has(suffix.exec(claim)?.[1] ?? ''));
}

/**
 * The initiation window a CREATE gets: open for `initiationWindowSeconds` when the look-up shows
 * that no volume claim of this StatefulSet exists (a brand-new set), closed when claims exist
 * (re-created over retained volumes: the members rejoin with their data) or when it cannot tell.
 */
export function creationWindow(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget,
  settings: PolicySettings,
  found: MutationLookups,
  name: string,
): { window: InitiationWindow; warning?: string; denial?: string } {
  const claims = found.claims ?? { outcome: 'unavailable', reason: 'no look-up was made' };
  if (claims.outcome === 'unavailable') {
    const problem = `could not list PersistentVolumeClaims to tell whether ${name} is new: ${claims.reason}`;
    if (settings.lookupFailureMode === 'deny') {
      return {
        window: CLOSED_WINDOW,
        denial: `sts-guard denied ${name}: ${problem}. Retry once sts-guard can reach the Kubernetes API with list on persistentvolumeclaims (see its logs).`,
      };
    }
    return {
      window: CLOSED_WINDOW,
      warning: `${name}: ${problem}; the bootstrap will join members but never initiate the replica set. If it is new, annotate ${RESET_ANNOTATION}=<any value> once the pods run.`,
    };
  }
  const earlier = earlierClaims(statefulSet, target, claims.claims);
  if (earlier.length > 0) {
    return {
      window: CLOSED_WINDOW,
      warning: `${name}: PersistentVolumeClaims ${earlier.slice(0, 5).join(', ')}${earlier.length > 5 ? ', …' : ''} of an earlier StatefulSet with this name exist: its members keep their data and rejoin; the bootstrap will not initiate a new replica set.`,
    };
  }
  return { window: { until: found.now + settings.initiationWindowSeconds, resetToken: '' } };
}
