import { isDeepStrictEqual } from 'node:util';
import type {
  V1Container,
  V1LifecycleHandler,
  V1PersistentVolumeClaim,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { escapePathComponent } from 'fast-json-patch';
import type { ServerSettings } from '../engines/index.js';
import type { InitiationWindow } from '../engines/types.js';
import { describe, detectDatabase, inspectServer } from './detect.js';
import { STEPPED_ASIDE_ANNOTATION, stepAsideReason } from './owners.js';
import type {
  DatabaseTarget,
  JsonPatchOperation,
  Mutation,
  MutationLookups,
  PolicyContext,
  PolicySettings,
  StatefulSetReview,
} from './types.js';

/** Records what sts-guard injected, e.g. `bootstrap-hook,storage`. */
export const INJECTED_ANNOTATION = 'sts-guard.io/injected';
export const INJECTED_BOOTSTRAP_HOOK = 'bootstrap-hook';
export const INJECTED_STORAGE = 'storage';

const NO_MUTATION: Mutation = { patch: [], warnings: [], injected: [] };

function injectedBefore(statefulSet: V1StatefulSet | undefined): string[] {
  const value = statefulSet?.metadata?.annotations?.[INJECTED_ANNOTATION];
  return value ? value.split(',').filter(Boolean) : [];
}

/** True when `mountPath` is `dataPath` or one of its parents (a mount at /data covers /data/db). */
function covers(mountPath: string, dataPath: string): boolean {
  const mount = mountPath.replace(/\/+$/, '');
  const data = dataPath.replace(/\/+$/, '');
  return mount === '' || data === mount || data.startsWith(`${mount}/`);
}

function dataMount(container: V1Container, dataPath: string) {
  return (container.volumeMounts ?? []).find(
    (m) => typeof m?.mountPath === 'string' && covers(m.mountPath, dataPath),
  );
}

/** Appends to an array at `path`, creating it when the object has none. */
function appendTo(path: string, existing: unknown[] | undefined, value: unknown): JsonPatchOperation {
  return existing ? { op: 'add', path: `${path}/-`, value } : { op: 'add', path, value: [value] };
}

function claimName(statefulSet: V1StatefulSet, target: DatabaseTarget): string | undefined {
  const taken = new Set([
    ...(statefulSet.spec?.template?.spec?.volumes ?? []).map((v) => v.name),
    ...(statefulSet.spec?.volumeClaimTemplates ?? []).map((c) => c.metadata?.name),
  ]);
  return [`${target.engine.id}-data`, `sts-guard-${target.engine.id}-data`].find((n) => !taken.has(n));
}

/** Set on a StatefulSet to reopen the bootstrap's initiation window once per distinct value. */
export const RESET_ANNOTATION = 'sts-guard.io/reset-replica-set';

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

const isoTime = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

/**
 * The initiation window a CREATE gets: open for `initiationWindowSeconds` when the look-up shows
 * that no volume claim of this StatefulSet exists (a brand-new set), closed when claims exist
 * (re-created over retained volumes: the members rejoin with their data) or when it cannot tell.
 */
function creationWindow(
  statefulSet: V1StatefulSet,
  target: DatabaseTarget,
  settings: PolicySettings,
  found: MutationLookups,
  name: string,
): { window: InitiationWindow; warning?: string; denial?: string } {
  const closed: InitiationWindow = { until: 0, resetToken: '' };
  const claims = found.claims ?? { outcome: 'unavailable', reason: 'no look-up was made' };
  if (claims.outcome === 'unavailable') {
    const problem = `could not list PersistentVolumeClaims to tell whether ${name} is new: ${claims.reason}`;
    if (settings.lookupFailureMode === 'deny') {
      return {
        window: closed,
        denial: `sts-guard denied ${name}: ${problem}. Retry once sts-guard can reach the Kubernetes API with list on persistentvolumeclaims (see its logs).`,
      };
    }
    return {
      window: closed,
      warning: `${name}: ${problem}; the bootstrap will join members but never initiate the replica set. If it is new, annotate ${RESET_ANNOTATION}=<any value> once the pods run.`,
    };
  }
  const earlier = earlierClaims(statefulSet, target, claims.claims);
  if (earlier.length > 0) {
    return {
      window: closed,
      warning: `${name}: PersistentVolumeClaims ${earlier.slice(0, 5).join(', ')}${earlier.length > 5 ? ', …' : ''} of an earlier StatefulSet with this name exist: its members keep their data and rejoin; the bootstrap will not initiate a new replica set.`,
    };
  }
  return { window: { until: found.now + settings.initiationWindowSeconds, resetToken: '' } };
}

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

const isOpen = (window: InitiationWindow, now: number) => window.until > now;

/**
 * The bootstrap hook for this review. Its text lives in the pod template, so every change to it
 * rolls the pods: it changes only at CREATE, on a deliberate reset, when a hook is missing, and —
 * for an older hook version — together with a template change the UPDATE makes anyway.
 */
function bootstrapHookPatch(
  review: StatefulSetReview & { object: V1StatefulSet },
  target: DatabaseTarget,
  replicaSetName: string,
  settings: PolicySettings,
  containerPath: string,
  name: string,
  port: number,
  found: MutationLookups,
): { patch: JsonPatchOperation[]; warnings: string[]; denial?: string } {
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
  const closed: InitiationWindow = { until: 0, resetToken: '' };

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
    if (templateChanged) return { patch: [hook(closed)], warnings: [upgraded(info.version)] };
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
  if (oldInfo) return { patch: [hook(closed)], warnings: [upgraded(oldInfo.version)] };
  return {
    patch: [hook(closed)],
    warnings: [
      `${name}: bootstrap hook added on UPDATE, without an initiation window: members join the existing replica set "${replicaSetName}". If it was never initiated, annotate ${RESET_ANNOTATION}=<any value>.`,
    ],
  };
}

function storagePatch(
  review: StatefulSetReview & { object: V1StatefulSet },
  target: DatabaseTarget,
  settings: PolicySettings,
  containerPath: string,
  name: string,
  dataPath: string | undefined,
): { patch: JsonPatchOperation[]; warning?: string } {
  const { container, engine } = target;
  const statefulSet = review.object;
  if (dataPath === undefined) {
    return {
      patch: [],
      warning: `${name}: no storage added: the data directory is set in a config file sts-guard could not read.`,
    };
  }
  if (dataMount(container, dataPath)) return { patch: [] };

  if (review.operation === 'UPDATE') {
    // volumeClaimTemplates is immutable. An apply that dropped the claim sts-guard injected at
    // CREATE (server-side apply removes fields its manifest lacks) gets it back unchanged.
    const old = review.oldObject;
    const oldTarget = detectDatabase(old);
    // The data path is the new object's: an apply that drops the claim rarely moves the data too.
    const oldMount = oldTarget && dataMount(oldTarget.container, dataPath);
    const oldClaims = old?.spec?.volumeClaimTemplates ?? [];
    const restorable =
      injectedBefore(old).includes(INJECTED_STORAGE) &&
      oldMount !== undefined &&
      oldClaims.some((c) => c.metadata?.name === oldMount.name) &&
      (statefulSet.spec?.volumeClaimTemplates ?? []).length === 0;
    if (restorable) {
      return {
        patch: [
          { op: 'add', path: '/spec/volumeClaimTemplates', value: oldClaims },
          appendTo(`${containerPath}/volumeMounts`, container.volumeMounts, oldMount),
        ],
      };
    }
    return {
      patch: [],
      warning: `${name}: nothing persistent is mounted at ${dataPath}; volumeClaimTemplates are immutable, so recreate it (kubectl delete statefulset --cascade=orphan, then apply).`,
    };
  }

  const claim = claimName(statefulSet, target);
  if (!claim)
    return { patch: [], warning: `${name}: no storage added: volume names ${engine.id}-data are taken.` };
  const template: V1PersistentVolumeClaim = {
    metadata: { name: claim, labels: { 'app.kubernetes.io/managed-by': 'sts-guard' } },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: settings.storage.size } },
      ...(settings.storage.storageClassName ? { storageClassName: settings.storage.storageClassName } : {}),
    },
  };
  return {
    patch: [
      appendTo('/spec/volumeClaimTemplates', statefulSet.spec?.volumeClaimTemplates, template),
      appendTo(`${containerPath}/volumeMounts`, container.volumeMounts, { name: claim, mountPath: dataPath }),
    ],
  };
}

/** True when the wiring lets sts-guard's bootstrap hook run the set (it names the set, and no image script does). */
const hooked = (wiring: ServerSettings['replicaSet']): boolean =>
  wiring.state === 'member' && !wiring.bootstrapsItself && !wiring.nameAtRunTime;

/**
 * The namespace whose PersistentVolumeClaims the edge must list before calling
 * `mutateStatefulSet`, or undefined when the mutation does not depend on them: only a CREATE that
 * gets sts-guard's bootstrap hook does (a brand-new set gets an initiation window). Operator-owned
 * StatefulSets and images that bootstrap themselves get no hook, so no look-up. The ConfigMaps
 * `configMapsToLookUp` named come first: a config file may be what makes it a replica set.
 */
export function claimsToLookUp(
  review: StatefulSetReview,
  settings: PolicySettings,
  context: PolicyContext = {},
): string | undefined {
  const statefulSet = review.object;
  if (review.operation !== 'CREATE' || !statefulSet?.spec?.serviceName) return undefined;
  const target = detectDatabase(statefulSet);
  if (!target || stepAsideReason(statefulSet, target.engine, settings)) return undefined;
  const existing = target.container.lifecycle?.postStart;
  if (existing && !target.engine.isBootstrapHook(existing)) return undefined;
  const server = inspectServer(
    statefulSet,
    target,
    review.namespace,
    settings.clusterDomain,
    context.configMaps,
  );
  return hooked(server.replicaSet) ? review.namespace : undefined;
}

/**
 * At CREATE only (podManagementPolicy is immutable afterwards): OrderedReady with a readiness
 * probe starts ordinal 1 only once ordinal 0 is Ready, and an ordinal 0 that lost its volume while
 * its peers were down is never Ready: it waits for exactly those peers. Parallel has no such wait.
 */
function creationAdvice(
  review: StatefulSetReview & { object: V1StatefulSet },
  target: DatabaseTarget,
  name: string,
): string | undefined {
  if (review.operation !== 'CREATE') return undefined;
  const policy = review.object.spec?.podManagementPolicy ?? 'OrderedReady';
  if (policy !== 'OrderedReady' || !target.container.readinessProbe) return undefined;
  return `${name}: podManagementPolicy OrderedReady with a readiness probe can deadlock recovery: a member that lost its volume is not Ready until its peers run, and OrderedReady starts them only after it is Ready. Set podManagementPolicy: Parallel (immutable after creation; rolling updates stay one pod at a time).`;
}

/**
 * The mutating decision for a StatefulSet review: a JSON Patch that adds the replica-set
 * bootstrap hook and persistent storage where they are missing. Idempotent: the patch for an
 * object this function already mutated is empty.
 */
export function mutateStatefulSet(
  review: StatefulSetReview,
  settings: PolicySettings,
  found: MutationLookups,
): Mutation {
  if ((review.operation !== 'CREATE' && review.operation !== 'UPDATE') || !review.object) return NO_MUTATION;
  const statefulSet = review.object;
  const target = detectDatabase(statefulSet);
  if (!target) return NO_MUTATION;
  // An operator's StatefulSet is the operator's: a patch would be undone on its next reconcile.
  const steppedAside = stepAsideReason(statefulSet, target.engine, settings);
  if (steppedAside) return { ...NO_MUTATION, auditAnnotations: { [STEPPED_ASIDE_ANNOTATION]: steppedAside } };
  const server: ServerSettings = inspectServer(
    statefulSet,
    target,
    review.namespace,
    settings.clusterDomain,
    found.configMaps,
  );
  const wiring = server.replicaSet;
  if (wiring.state !== 'member') return NO_MUTATION;

  const reviewed = { ...review, object: statefulSet };
  const name = describe(statefulSet, review.namespace);
  const containerPath = `/spec/template/spec/containers/${target.containerIndex}`;
  // Images that initiate or join the set themselves (bitnami/mongodb) must not get a second
  // bootstrap, nor an initiation window: their own scripts decide when to initiate.
  const hook: { patch: JsonPatchOperation[]; warnings: string[]; denial?: string } = wiring.bootstrapsItself
    ? { patch: [], warnings: [] }
    : wiring.nameAtRunTime
      ? {
          patch: [],
          warnings: [
            `${name}: no bootstrap hook added: the replica-set name (${wiring.name}) is only known when the shell runs.`,
          ],
        }
      : bootstrapHookPatch(reviewed, target, wiring.name, settings, containerPath, name, server.port, found);
  if (hook.denial) return { patch: [], warnings: hook.warnings, injected: [], denial: hook.denial };
  const storage = storagePatch(reviewed, target, settings, containerPath, name, server.dataPath);
  // The Parallel advice concerns sts-guard's hook, which waits for peers; self-bootstrapping images have none.
  const advice = hooked(wiring) ? creationAdvice(reviewed, target, name) : undefined;

  const patch = [...hook.patch, ...storage.patch];
  const warnings = [...hook.warnings, storage.warning, advice].filter((w): w is string => w !== undefined);
  const injected = [
    ...(hook.patch.length > 0 ? [INJECTED_BOOTSTRAP_HOOK] : []),
    ...(storage.patch.length > 0 ? [INJECTED_STORAGE] : []),
  ];
  if (injected.length === 0) return { patch: [], warnings, injected };

  const recorded = [...new Set([...injectedBefore(statefulSet), ...injected])].join(',');
  patch.push(
    statefulSet.metadata?.annotations
      ? {
          op: 'add',
          path: `/metadata/annotations/${escapePathComponent(INJECTED_ANNOTATION)}`,
          value: recorded,
        }
      : { op: 'add', path: '/metadata/annotations', value: { [INJECTED_ANNOTATION]: recorded } },
  );
  return { patch, warnings, injected };
}
