import type { V1StatefulSet } from '@kubernetes/client-node';
import { escapePathComponent } from 'fast-json-patch';
import type { ReplicaSetWiring } from '../engines/index.js';
import { bootstrapHookPatch, type HookPatch } from './bootstrap-hook.js';
import {
  type DatabaseFacts,
  databaseFacts,
  type InspectedDatabase,
  inspectDatabase,
  inspectedFacts,
} from './facts.js';
import {
  INJECTED_ANNOTATION,
  INJECTED_BOOTSTRAP_HOOK,
  INJECTED_STORAGE,
  injectedBefore,
} from './injected.js';
import { STEPPED_ASIDE_ANNOTATION } from './owners.js';
import { storagePatch } from './storage.js';
import type {
  JsonPatchOperation,
  Mutation,
  MutationLookups,
  PolicyContext,
  PolicySettings,
  StatefulSetReview,
} from './types.js';

export { RESET_ANNOTATION } from './initiation-window.js';
export { INJECTED_ANNOTATION } from './injected.js';

const NO_MUTATION: Mutation = { patch: [], warnings: [], injected: [] };

/** True when the wiring lets sts-guard's bootstrap hook run the set (it names the set, and no image script does). */
const hooked = (wiring: ReplicaSetWiring): boolean =>
  wiring.state === 'member' && !wiring.bootstrapsItself && !wiring.nameAtRunTime;

/**
 * Whether the mutation depends on the namespace's PersistentVolumeClaims: only a CREATE that gets
 * sts-guard's bootstrap hook does (a brand-new set gets an initiation window). Operator-owned
 * StatefulSets and images that bootstrap themselves get no hook, so no look-up. The ConfigMaps the
 * facts named come first: a config file may be what makes it a replica set.
 */
export function needsClaims(db: InspectedDatabase | undefined): boolean {
  if (!db || db.steppedAside) return false;
  const { review, statefulSet, target } = db;
  if (review.operation !== 'CREATE' || !statefulSet.spec?.serviceName) return false;
  const existing = target.container.lifecycle?.postStart;
  if (existing && !target.engine.isBootstrapHook(existing)) return false;
  return hooked(db.server.replicaSet);
}

/**
 * The namespace whose PersistentVolumeClaims the edge must list before calling
 * `mutateStatefulSet`, or undefined when the mutation does not depend on them (`needsClaims`).
 */
export function claimsToLookUp(
  review: StatefulSetReview,
  settings: PolicySettings,
  context: PolicyContext = {},
): string | undefined {
  const facts: DatabaseFacts | undefined = databaseFacts(review, settings);
  if (!facts || facts.steppedAside) return undefined;
  return needsClaims(inspectDatabase(facts, settings, context.configMaps)) ? review.namespace : undefined;
}

/**
 * At CREATE only (podManagementPolicy is immutable afterwards): OrderedReady with a readiness
 * probe starts ordinal 1 only once ordinal 0 is Ready, and an ordinal 0 that lost its volume while
 * its peers were down is never Ready: it waits for exactly those peers. Parallel has no such wait.
 */
function creationAdvice(db: InspectedDatabase): string | undefined {
  if (db.review.operation !== 'CREATE') return undefined;
  const policy = db.statefulSet.spec?.podManagementPolicy ?? 'OrderedReady';
  if (policy !== 'OrderedReady' || !db.target.container.readinessProbe) return undefined;
  return `${db.name}: podManagementPolicy OrderedReady with a readiness probe can deadlock recovery: a member that lost its volume is not Ready until its peers run, and OrderedReady starts them only after it is Ready. Set podManagementPolicy: Parallel (immutable after creation; rolling updates stay one pod at a time).`;
}

/** The hook part of the plan: none for images that bootstrap themselves or name the set only at run time. */
function hookPlan(
  db: InspectedDatabase,
  settings: PolicySettings,
  lookups: MutationLookups,
  containerPath: string,
): HookPatch {
  const wiring = db.server.replicaSet;
  // Images that initiate or join the set themselves (bitnami/mongodb) must not get a second
  // bootstrap, nor an initiation window: their own scripts decide when to initiate.
  if (wiring.state !== 'member' || wiring.bootstrapsItself) return { patch: [], warnings: [] };
  if (wiring.nameAtRunTime) {
    return {
      patch: [],
      warnings: [
        `${db.name}: no bootstrap hook added: the replica-set name (${wiring.name}) is only known when the shell runs.`,
      ],
    };
  }
  return bootstrapHookPatch({
    review: db.review,
    target: db.target,
    replicaSetName: wiring.name,
    port: db.server.port,
    containerPath,
    name: db.name,
    settings,
    lookups,
  });
}

/**
 * The mutating decision for a database StatefulSet whose facts are known: a JSON Patch that adds
 * the replica-set bootstrap hook and persistent storage where they are missing. Idempotent: the
 * patch for an object this function already mutated is empty.
 */
export function planMutation(
  db: InspectedDatabase,
  settings: PolicySettings,
  lookups: MutationLookups,
): Mutation {
  // An operator's StatefulSet is the operator's: a patch would be undone on its next reconcile.
  if (db.steppedAside)
    return { ...NO_MUTATION, auditAnnotations: { [STEPPED_ASIDE_ANNOTATION]: db.steppedAside } };
  if (db.server.replicaSet.state !== 'member') return NO_MUTATION;
  const statefulSet: V1StatefulSet = db.statefulSet;
  const containerPath = `/spec/template/spec/containers/${db.target.containerIndex}`;
  const hook = hookPlan(db, settings, lookups, containerPath);
  if (hook.denial) return { patch: [], warnings: hook.warnings, injected: [], denial: hook.denial };
  const storage = storagePatch({
    review: db.review,
    target: db.target,
    settings,
    containerPath,
    name: db.name,
    dataPath: db.server.dataPath,
  });
  // The Parallel advice concerns sts-guard's hook, which waits for peers; self-bootstrapping images have none.
  const advice = hooked(db.server.replicaSet) ? creationAdvice(db) : undefined;

  const patch: JsonPatchOperation[] = [...hook.patch, ...storage.patch];
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

/**
 * The mutating decision for a StatefulSet review (the policy's review-in form): the facts are
 * worked out here from the ConfigMaps the edge read; the claims and the time come in `lookups`.
 */
export function mutateStatefulSet(
  review: StatefulSetReview,
  settings: PolicySettings,
  lookups: MutationLookups,
): Mutation {
  const db = inspectedFacts(review, settings, lookups.configMaps);
  return db ? planMutation(db, settings, lookups) : NO_MUTATION;
}
