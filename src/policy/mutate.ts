import type { V1Container, V1PersistentVolumeClaim, V1StatefulSet } from '@kubernetes/client-node';
import { escapePathComponent } from 'fast-json-patch';
import type { ServerSettings } from '../engines/index.js';
import { describe, detectDatabase, inspectServer } from './detect.js';
import { STEPPED_ASIDE_ANNOTATION, stepAsideReason } from './owners.js';
import type {
  DatabaseTarget,
  JsonPatchOperation,
  Mutation,
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

function bootstrapHookPatch(
  review: StatefulSetReview & { object: V1StatefulSet },
  target: DatabaseTarget,
  replicaSetName: string,
  settings: PolicySettings,
  containerPath: string,
  name: string,
  port: number,
): { patch: JsonPatchOperation[]; warning?: string } {
  const { container, engine } = target;
  const existing = container.lifecycle?.postStart;
  if (existing) {
    if (engine.isBootstrapHook(existing)) return { patch: [] };
    return {
      patch: [],
      warning: `${name}: container "${container.name}" has its own postStart hook, so sts-guard did not add the replica-set bootstrap; yours must initiate/join "${replicaSetName}".`,
    };
  }
  const serviceName = review.object.spec?.serviceName;
  if (!serviceName) {
    return {
      patch: [],
      warning: `${name}: no bootstrap hook added: spec.serviceName is empty, so members have no DNS names.`,
    };
  }
  const hook = engine.bootstrapHook({
    replicaSetName,
    serviceName,
    namespace: review.namespace,
    clusterDomain: settings.clusterDomain,
    port,
  });
  const patch: JsonPatchOperation = container.lifecycle
    ? { op: 'add', path: `${containerPath}/lifecycle/postStart`, value: hook }
    : { op: 'add', path: `${containerPath}/lifecycle`, value: { postStart: hook } };
  return { patch: [patch] };
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

/**
 * The mutating decision for a StatefulSet review: a JSON Patch that adds the replica-set
 * bootstrap hook and persistent storage where they are missing. Idempotent: the patch for an
 * object this function already mutated is empty.
 */
export function mutateStatefulSet(
  review: StatefulSetReview,
  settings: PolicySettings,
  context: PolicyContext = {},
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
    context.configMaps,
  );
  const wiring = server.replicaSet;
  if (wiring.state !== 'member') return NO_MUTATION;

  const reviewed = { ...review, object: statefulSet };
  const name = describe(statefulSet, review.namespace);
  const containerPath = `/spec/template/spec/containers/${target.containerIndex}`;
  // Images that initiate or join the set themselves (bitnami/mongodb) must not get a second bootstrap.
  const hook: { patch: JsonPatchOperation[]; warning?: string } = wiring.bootstrapsItself
    ? { patch: [] }
    : wiring.nameAtRunTime
      ? {
          patch: [],
          warning: `${name}: no bootstrap hook added: the replica-set name (${wiring.name}) is only known when the shell runs.`,
        }
      : bootstrapHookPatch(reviewed, target, wiring.name, settings, containerPath, name, server.port);
  const storage = storagePatch(reviewed, target, settings, containerPath, name, server.dataPath);

  const patch = [...hook.patch, ...storage.patch];
  const warnings = [hook.warning, storage.warning].filter((w): w is string => w !== undefined);
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
