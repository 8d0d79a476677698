/** The pure policy: review in, decision and patch out. No I/O, no clock. */
export {
  CLIENT_ROUTING_ANNOTATION,
  clientRoutingFindings,
  clientRoutingNeedsServices,
  clientRoutingNeedsServicesFor,
  clientRoutingNeedsStatefulSets,
  clientRoutingWarnings,
  SEED_ONLY,
  type ServiceListLookup,
  validateClientRouting,
} from './client-routing.js';
export { describe, desiredReplicas, detectDatabase, inspectServer } from './detect.js';
export {
  type ExceptionList,
  exceptionFor,
  type LabelSelector,
  NO_EXCEPTIONS,
  type PolicyException,
  selectorMatches,
} from './exceptions.js';
export {
  type DatabaseFacts,
  databaseFacts,
  type InspectedDatabase,
  inspectDatabase,
  inspectedFacts,
  type JudgedReview,
} from './facts.js';
export {
  claimsToLookUp,
  INJECTED_ANNOTATION,
  mutateStatefulSet,
  needsClaims,
  planMutation,
  RESET_ANNOTATION,
} from './mutate.js';
export { STEPPED_ASIDE_ANNOTATION, stepAsideReason } from './owners.js';
export {
  planScale,
  type ScalePlan,
  type ScaleReview,
  type StatefulSetLookup,
  scaleDecision,
  scaledStatefulSetReview,
  scaleReplicas,
  statefulSetToLookUpForScale,
  validateScale,
} from './scale.js';
export {
  type ServiceReview,
  type StatefulSetListLookup,
  serviceProtectionNeedsStatefulSets,
  statefulSetsServedBy,
  validateServiceChange,
} from './service-protection.js';
export * from './types.js';
export {
  configMapsToLookUp,
  EXCEPTION_ANNOTATION,
  headlessServiceFor,
  headlessServiceToLookUp,
  judgeStatefulSet,
  steppedAsideDecision,
  validateStatefulSet,
} from './validate.js';
