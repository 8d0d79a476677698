import type { V1Container, V1PersistentVolumeClaim, V1StatefulSet } from '@kubernetes/client-node';
import { detectDatabase } from './detect.js';
import { INJECTED_STORAGE, injectedBefore } from './injected.js';
import type { DatabaseTarget, JsonPatchOperation, PolicySettings, StatefulSetReview } from './types.js';

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
export function appendTo(path: string, existing: unknown[] | undefined, value: unknown): JsonPatchOperation {
  return existing ? { op: 'add', path: `${path}/-`, value } : { op: 'add', path, value: [value] };
}

function claimName(statefulSet: V1StatefulSet, target: DatabaseTarget): string | undefined {
  const taken = new Set([
    ...(statefulSet.spec?.template?.spec?.volumes ?? []).map((v) => v.name),
    ...(statefulSet.spec?.volumeClaimTemplates ?? []).map((c) => c.metadata?.name),
  ]);
  return [`${target.engine.id}-data`, `sts-guard-${target.engine.id}-data`].find((n) => !taken.has(n));
}

/** Everything the storage of one review depends on. */
export interface StorageInput {
  review: StatefulSetReview & { object: V1StatefulSet };
  target: DatabaseTarget;
  settings: PolicySettings;
  /** The JSON Pointer of the database container in the pod template. */
  containerPath: string;
  /** `StatefulSet "ns/name"`, the subject of its warning. */
  name: string;
  /** Where the server keeps its data; undefined when a config file that may move it could not be read. */
  dataPath: string | undefined;
}

/**
 * A volumeClaimTemplate mounted at the data path when nothing persistent is mounted there (at
 * CREATE: the field is immutable), or the claim sts-guard injected at CREATE put back when an
 * apply dropped it.
 */
export function storagePatch(input: StorageInput): { patch: JsonPatchOperation[]; warning?: string } {
  const { review, target, settings, containerPath, name, dataPath } = input;
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
