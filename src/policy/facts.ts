import type { V1StatefulSet } from '@kubernetes/client-node';
import type { ConfigMaps, ServerSettings } from '../engines/index.js';
import { describe, desiredReplicas, detectDatabase, inspectServer } from './detect.js';
import { stepAsideReason } from './owners.js';
import type { DatabaseTarget, PolicySettings, StatefulSetReview } from './types.js';

/** A review whose new object the rules judge: a CREATE or UPDATE that carries one. */
export type JudgedReview = StatefulSetReview & { object: V1StatefulSet };

export function judgesObject(review: StatefulSetReview): review is JudgedReview {
  return (review.operation === 'CREATE' || review.operation === 'UPDATE') && review.object !== undefined;
}

/**
 * What a StatefulSet review is about, worked out once before any look-up: the database it runs
 * (engine and container), whether sts-guard leaves it to its controller, and the ConfigMaps the
 * engine must read to tell how its server is configured. Undefined when there is nothing to judge
 * (not a CREATE or UPDATE, or not a database sts-guard knows).
 */
export interface DatabaseFacts {
  review: JudgedReview;
  statefulSet: V1StatefulSet;
  namespace: string;
  /** `StatefulSet "ns/name"`: the subject of every message. */
  name: string;
  /** `spec.replicas` as the API server defaults it. */
  replicas: number;
  target: DatabaseTarget;
  /** Why sts-guard leaves it to its controller (an operator), when it does. */
  steppedAside: string | undefined;
  /** The ConfigMaps (in the review's namespace) to read before inspecting: none when stepped aside. */
  configMapNames: readonly string[];
}

/** How the database's server is configured, once the ConfigMaps `configMapNames` named are read. */
export interface InspectedDatabase extends DatabaseFacts {
  configMaps: ConfigMaps | undefined;
  server: ServerSettings;
}

export function databaseFacts(
  review: StatefulSetReview,
  settings: PolicySettings,
): DatabaseFacts | undefined {
  if (!judgesObject(review)) return undefined;
  const statefulSet = review.object;
  const target = detectDatabase(statefulSet);
  if (!target) return undefined;
  const steppedAside = stepAsideReason(statefulSet, target.engine, settings);
  const pod = statefulSet.spec?.template?.spec ?? { containers: [target.container] };
  return {
    review,
    statefulSet,
    namespace: review.namespace,
    name: describe(statefulSet, review.namespace),
    replicas: desiredReplicas(statefulSet),
    target,
    steppedAside,
    configMapNames: steppedAside ? [] : target.engine.configMapsToRead(pod, target.container),
  };
}

export function inspectDatabase(
  facts: DatabaseFacts,
  settings: PolicySettings,
  configMaps: ConfigMaps | undefined,
): InspectedDatabase {
  const server = inspectServer(
    facts.statefulSet,
    facts.target,
    facts.namespace,
    settings.clusterDomain,
    configMaps,
  );
  return { ...facts, configMaps, server };
}

/** Both steps at once, for callers that hold the ConfigMaps already (tests, the policy's own wrappers). */
export function inspectedFacts(
  review: StatefulSetReview,
  settings: PolicySettings,
  configMaps: ConfigMaps | undefined,
): InspectedDatabase | undefined {
  const facts = databaseFacts(review, settings);
  return facts && inspectDatabase(facts, settings, configMaps);
}
