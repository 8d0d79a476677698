import type { V1StatefulSet } from '@kubernetes/client-node';
import type { DatabaseEngine } from '../engines/index.js';
import type { PolicySettings } from './types.js';

/** The audit annotation (prefixed by the API server with the webhook's name) saying why sts-guard stepped aside. */
export const STEPPED_ASIDE_ANNOTATION = 'stepped-aside';

/**
 * Why sts-guard leaves a StatefulSet to its controller, or undefined when it reviews it. A known
 * operator of the engine wires, bootstraps and reconciles the replica set itself: denying would
 * block its reconcile and mutating would start a fight over the pod template on every one.
 */
export function stepAsideReason(
  statefulSet: V1StatefulSet,
  engine: DatabaseEngine,
  settings: PolicySettings,
): string | undefined {
  const owner = statefulSet.metadata?.ownerReferences?.find((o) => o.controller === true);
  if (!owner) return undefined;
  const operator = engine.operatorOf(owner);
  if (operator) {
    return `managed by the ${engine.displayName} operator through ${operator} "${owner.name}", which wires and bootstraps the replica set itself; sts-guard neither mutates nor denies it`;
  }
  if (settings.otherControllerOwners === 'skip') {
    return `controlled by ${owner.kind} "${owner.name}" (${owner.apiVersion}), and OTHER_CONTROLLER_OWNERS=skip leaves StatefulSets with a controller to it`;
  }
  return undefined;
}
