import type { V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import {
  type ConfigMapLookup,
  type ConfigMaps,
  clientRoutingFindings,
  clientRoutingNeedsServicesFor,
  type DatabaseFacts,
  type Decision,
  databaseFacts,
  headlessServiceFor,
  type InspectedDatabase,
  inspectDatabase,
  type JsonPatchOperation,
  judgeStatefulSet,
  type Mutation,
  needsClaims,
  type PersistentVolumeClaimListLookup,
  planMutation,
  type StatefulSetReview,
} from '../policy/index.js';
import type { ConfigMapDirectory, LookupOutcome, ReviewContext } from './ports.js';

/**
 * The evaluation of a StatefulSet, in the order the API server runs sts-guard's webhooks: the
 * facts first (engine, step-aside, the ConfigMaps its server's config needs), then the look-ups
 * those facts ask for, then the policy's decision. The webhook's /validate and /mutate, `sts-guard
 * check` and the audit all call these; none orders the steps itself.
 */

/** What the validating stage decided about a StatefulSet. */
export interface StatefulSetValidation {
  decision: Decision;
  /** The database engine (`mongodb`) sts-guard recognised, or undefined: nothing to judge. */
  engine: string | undefined;
  /** Every look-up made, in order, for logs and metrics. */
  lookups: LookupOutcome[];
}

/** What the mutating stage decided about a StatefulSet. */
export interface StatefulSetMutation {
  mutation: Mutation;
  engine: string | undefined;
  lookups: LookupOutcome[];
}

interface ConfigMapsRead {
  read: ConfigMaps | undefined;
  lookups: readonly ConfigMapLookup[];
}

const NO_CONFIG_MAPS: ConfigMapsRead = { read: undefined, lookups: [] };

const NO_MUTATION: Mutation = Object.freeze({ patch: [], warnings: [], injected: [] }) as Mutation;

const notJudged = (): Decision => ({
  allowed: true,
  violations: [],
  findings: [],
  warnings: [],
  message: '',
});

const UNCONFIGURED_CONFIG_MAPS: ConfigMapLookup = {
  outcome: 'unavailable',
  reason: 'ConfigMap look-ups are not configured',
};

const UNCONFIGURED_CLAIMS: PersistentVolumeClaimListLookup = {
  outcome: 'unavailable',
  reason: 'PersistentVolumeClaim look-ups are not configured',
};

/** The ConfigMaps the facts name, read in parallel. */
async function readConfigMaps(
  facts: DatabaseFacts,
  directory: ConfigMapDirectory | undefined,
): Promise<ConfigMapsRead> {
  const names = facts.configMapNames;
  const lookups = await Promise.all(
    names.map((name) =>
      directory ? directory.lookup(facts.namespace, name) : Promise.resolve(UNCONFIGURED_CONFIG_MAPS),
    ),
  );
  return { read: new Map(names.map((name, i) => [name, lookups[i] as ConfigMapLookup])), lookups };
}

const outcomes = (lookups: readonly { outcome: LookupOutcome }[]) => lookups.map((l) => l.outcome);

/**
 * The validating stage: the headless-Service look-up and the ConfigMaps in parallel, the rules,
 * then — for a replicated database being created, scaled above one member or relabelled — the
 * Services of its namespace for the client-routing warnings.
 */
export async function validateStatefulSetReview(
  review: StatefulSetReview,
  ctx: ReviewContext,
): Promise<StatefulSetValidation> {
  const { settings } = ctx;
  const facts = databaseFacts(review, settings);
  if (!facts) return { decision: notJudged(), engine: undefined, lookups: [] };
  const serviceName = headlessServiceFor(facts, settings);
  const serviceLookup = () => (serviceName ? ctx.services.lookup(facts.namespace, serviceName) : undefined);
  // Nearly every review reads no ConfigMap: it then costs no extra promise on the hot path.
  const [service, configMaps] =
    facts.configMapNames.length > 0
      ? await Promise.all([serviceLookup(), readConfigMaps(facts, ctx.configMaps)])
      : [await serviceLookup(), NO_CONFIG_MAPS];
  const db = inspectDatabase(facts, settings, configMaps.read);
  const exceptions = ctx.exceptions?.current();
  const decision = judgeStatefulSet(db, settings, service, { exceptions });
  const lookups = [...(service ? [service.outcome] : []), ...outcomes(configMaps.lookups)];
  if (decision.allowed && ctx.services.list && clientRoutingNeedsServicesFor(db, settings, { exceptions })) {
    const services = await ctx.services.list(facts.namespace);
    lookups.push(services.outcome);
    for (const finding of clientRoutingFindings(db, settings, services)) {
      decision.findings.push(finding);
      if (finding.warning) decision.warnings.push(finding.warning);
    }
  }
  return { decision, engine: facts.target.engine.id, lookups };
}

function mutated(
  db: InspectedDatabase,
  ctx: ReviewContext,
  configMaps: ConfigMapsRead,
  claims: PersistentVolumeClaimListLookup | undefined,
): StatefulSetMutation {
  const now = Math.floor((ctx.clock ?? Date.now)() / 1000);
  const mutation = planMutation(db, ctx.settings, { configMaps: configMaps.read, claims, now });
  const lookups = [...outcomes(configMaps.lookups), ...(claims ? [claims.outcome] : [])];
  return { mutation, engine: db.target.engine.id, lookups };
}

/** The claim look-up, when the mutation depends on one (a promise only then), and the mutation. */
function withClaims(
  facts: DatabaseFacts,
  ctx: ReviewContext,
  configMaps: ConfigMapsRead,
): StatefulSetMutation | Promise<StatefulSetMutation> {
  const db = inspectDatabase(facts, ctx.settings, configMaps.read);
  if (!needsClaims(db)) return mutated(db, ctx, configMaps, undefined);
  if (!ctx.claims) return mutated(db, ctx, configMaps, UNCONFIGURED_CLAIMS);
  return ctx.claims.list(facts.namespace).then((claims) => mutated(db, ctx, configMaps, claims));
}

/**
 * The mutating stage: the ConfigMaps the facts name, then — at the CREATE of a StatefulSet that
 * gets the bootstrap hook — the namespace's claims, then the patch. Synchronous when it needs no
 * look-up, so the common review costs no promise.
 */
export function mutateStatefulSetReview(
  review: StatefulSetReview,
  ctx: ReviewContext,
): StatefulSetMutation | Promise<StatefulSetMutation> {
  const facts = databaseFacts(review, ctx.settings);
  if (!facts) return { mutation: NO_MUTATION, engine: undefined, lookups: [] };
  if (facts.configMapNames.length === 0) return withClaims(facts, ctx, NO_CONFIG_MAPS);
  return readConfigMaps(facts, ctx.configMaps).then((read) => withClaims(facts, ctx, read));
}

/** Applies a patch the way the API server does: every operation applies, or none. */
export const patched = (object: V1StatefulSet, patch: readonly JsonPatchOperation[]): V1StatefulSet =>
  jsonpatch.applyPatch(structuredClone(object), patch as jsonpatch.Operation[], true, false).newDocument;

/** The whole admission of a StatefulSet: mutation, the patched object, and the validation of it. */
export interface StatefulSetAdmission {
  mutation: Mutation;
  /** The object after the mutating webhook's patch: what the validating webhook judges and the API server stores. */
  mutated: V1StatefulSet;
  decision: Decision;
  engine: string | undefined;
  lookups: LookupOutcome[];
}

/** Each ConfigMap read once for both stages, as one admission would see it. */
function readOnce(directory: ConfigMapDirectory | undefined): ConfigMapDirectory | undefined {
  if (!directory) return undefined;
  const read = new Map<string, Promise<ConfigMapLookup>>();
  return {
    lookup(namespace, name) {
      const key = `${namespace}/${name}`;
      let lookup = read.get(key);
      if (!lookup) {
        lookup = directory.lookup(namespace, name);
        read.set(key, lookup);
      }
      return lookup;
    },
  };
}

/**
 * A StatefulSet through both of sts-guard's webhooks, in the API server's order: the mutating
 * webhook's patch is applied first, then the validating webhook judges the mutated object. A
 * mutating denial (a failed claim look-up under lookupFailureMode deny) ends it there.
 */
export async function admitStatefulSet(
  review: StatefulSetReview & { object: V1StatefulSet },
  ctx: ReviewContext,
): Promise<StatefulSetAdmission> {
  const once: ReviewContext = { ...ctx, configMaps: readOnce(ctx.configMaps) };
  const mutating = await mutateStatefulSetReview(review, once);
  const { mutation } = mutating;
  if (mutation.denial) {
    return {
      mutation,
      mutated: review.object,
      decision: { ...notJudged(), allowed: false, warnings: mutation.warnings, message: mutation.denial },
      engine: mutating.engine,
      lookups: mutating.lookups,
    };
  }
  const mutated = mutation.patch.length > 0 ? patched(review.object, mutation.patch) : review.object;
  const validating = await validateStatefulSetReview({ ...review, object: mutated }, once);
  return {
    mutation,
    mutated,
    decision: validating.decision,
    engine: validating.engine ?? mutating.engine,
    lookups: [...mutating.lookups, ...validating.lookups],
  };
}
