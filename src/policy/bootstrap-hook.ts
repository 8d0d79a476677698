import { isDeepStrictEqual } from 'node:util';
import type { V1LifecycleHandler, V1StatefulSet } from '@kubernetes/client-node';
import type { InitiationWindow } from '../engines/index.js';
import { detectDatabase } from './detect.js';
import { CLOSED_WINDOW, creationWindow, isOpen, isoTime, RESET_ANNOTATION } from './initiation-window.js';
import type {
  DatabaseTarget,
  JsonPatchOperation,
  MutationLookups,
  PolicySettings,
  StatefulSetReview,
} from './types.js';

/** The pod template with the database container's postStart left out: what else an UPDATE changed. */
function templateWithoutHook(statefulSet: V1StatefulSet | undefined, containerIndex: number): unknown {
  const template = structuredClone(statefulSet?.spec?.template);
  const container = template?.spec?.containers?.[containerIndex];
  if (container?.lifecycle) {
    delete container.lifecycle.postStart;
    if (Object.keys(container.lifecycle).length === 0) delete container.lifecycle;
  }
  return template;
}

/** Everything the bootstrap hook of one review depends on. */
export interface BootstrapHookInput {
  review: StatefulSetReview & { object: V1StatefulSet };
  target: DatabaseTarget;
  replicaSetName: string;
  /** The port the server listens on, which the hook's member addresses carry. */
  port: number;
  /** The JSON Pointer of the database container in the pod template. */
  containerPath: string;
  /** `StatefulSet "ns/name"`, the subject of its warnings. */
  name: string;
  settings: PolicySettings;
  /** The claim look-up and the time: where an initiation window starts. */
  lookups: MutationLookups;
}

export interface HookPatch {
  patch: JsonPatchOperation[];
  warnings: string[];
  /** Set when the mutating webhook must deny (a look-up failed under lookupFailureMode deny). */
  denial?: string;
}

/**
 * The bootstrap hook for this review. Its text lives in the pod template, so every change to it
 * rolls the pods: it changes only at CREATE, on a deliberate reset, when a hook is missing, and —
 * for an older hook version — together with a template change the UPDATE makes anyway.
 */
export function bootstrapHookPatch(input: BootstrapHookInput): HookPatch {
  const { review, target, replicaSetName, settings, containerPath, name, port, lookups: found } = input;
  const { container, engine } = target;
  const existing = container.lifecycle?.postStart;
  const info = existing ? engine.bootstrapHookInfo(existing) : undefined;
  if (existing && !info) {
    return {
      patch: [],
      warnings: [
        `${name}: container "${container.name}" has its own postStart hook, so sts-guard did not add the replica-set bootstrap; yours must initiate/join "${replicaSetName}".`,
      ],
    };
  }
  const serviceName = review.object.spec?.serviceName;
  if (!serviceName) {
    return {
      patch: [],
      warnings: [
        `${name}: no bootstrap hook added: spec.serviceName is empty, so members have no DNS names.`,
      ],
    };
  }
  const addressing = {
    replicaSetName,
    serviceName,
    namespace: review.namespace,
    clusterDomain: settings.clusterDomain,
    port,
  };
  const put = (value: V1LifecycleHandler): JsonPatchOperation => {
    if (existing) return { op: 'replace', path: `${containerPath}/lifecycle/postStart`, value };
    return container.lifecycle
      ? { op: 'add', path: `${containerPath}/lifecycle/postStart`, value }
      : { op: 'add', path: `${containerPath}/lifecycle`, value: { postStart: value } };
  };
  const hook = (window: InitiationWindow) => put(engine.bootstrapHook(addressing, window));

  const old = review.operation === 'UPDATE' ? detectDatabase(review.oldObject) : undefined;
  const oldHandler = old?.container.lifecycle?.postStart;
  const oldInfo = oldHandler ? old?.engine.bootstrapHookInfo(oldHandler) : undefined;

  // A deliberate reset: reopen initiation once per distinct annotation value.
  const reset = review.object.metadata?.annotations?.[RESET_ANNOTATION];
  const token = reset ? engine.bootstrapResetToken(reset) : '';
  const recordedToken = info?.window.resetToken ?? oldInfo?.window.resetToken ?? '';
  if (token !== '' && token !== recordedToken) {
    const window = { until: found.now + settings.initiationWindowSeconds, resetToken: token };
    return {
      patch: [hook(window)],
      warnings: [
        `${name}: ${RESET_ANNOTATION}=${reset}: ordinal 0 may initiate a NEW replica set "${replicaSetName}" until ${isoTime(window.until)} if no member that answers holds its data; the pods roll to pick this up. Do this only when every volume of the set is gone.`,
      ],
    };
  }

  if (review.operation === 'CREATE') {
    const created = creationWindow(review.object, target, settings, found, name);
    const warnings = created.warning ? [created.warning] : [];
    if (created.denial) return { patch: [], warnings, denial: created.denial };
    // Idempotent under reinvocation: a current hook whose window agrees with the look-up stays.
    if (info?.current && isOpen(info.window, found.now) === isOpen(created.window, found.now)) {
      return { patch: [], warnings };
    }
    return { patch: [hook(created.window)], warnings };
  }

  if (info?.current) return { patch: [], warnings: [] };
  const templateChanged = !isDeepStrictEqual(
    templateWithoutHook(review.oldObject, old?.containerIndex ?? target.containerIndex),
    templateWithoutHook(review.object, target.containerIndex),
  );
  const upgraded = (from: string) =>
    `${name}: bootstrap hook ${from} upgraded to ${engine.bootstrapHookInfo(engine.bootstrapHook(addressing))?.version} along with this pod-template change; it never initiates a second replica set (docs/operations.md, "Upgrading the bootstrap hook").`;
  if (info) {
    // An older hook: replacing it alone would roll every pod, so it waits for a change that rolls them anyway.
    if (templateChanged) return { patch: [hook(CLOSED_WINDOW)], warnings: [upgraded(info.version)] };
    return {
      patch: [],
      warnings: [
        `${name}: keeps bootstrap hook ${info.version}, which can initiate a second replica set after a member loses its volume; it is upgraded with the next pod-template change.`,
      ],
    };
  }
  if (oldHandler && oldInfo && (oldInfo.current || !templateChanged)) {
    // An apply that dropped the hook sts-guard injected gets the very same one back: no rollout.
    return { patch: [put(oldHandler)], warnings: [] };
  }
  if (oldInfo) return { patch: [hook(CLOSED_WINDOW)], warnings: [upgraded(oldInfo.version)] };
  return {
    patch: [hook(CLOSED_WINDOW)],
    warnings: [
      `${name}: bootstrap hook added on UPDATE, without an initiation window: members join the existing replica set "${replicaSetName}". If it was never initiated, annotate ${RESET_ANNOTATION}=<any value>.`,
    ],
  };
}
