/** The pure policy: review in, decision and patch out. No I/O, no clock. */
export {
  CLIENT_ROUTING_ANNOTATION,
  clientRoutingNeedsServices,
  clientRoutingNeedsStatefulSets,
  clientRoutingWarnings,
  SEED_ONLY,
  type ServiceListLookup,
  validateClientRouting,
} from './client-routing.js';
export { describe, desiredReplicas, detectDatabase } from './detect.js';
export { claimsToLookUp, INJECTED_ANNOTATION, mutateStatefulSet, RESET_ANNOTATION } from './mutate.js';
export {
  type ScaleReview,
  type StatefulSetLookup,
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
export { headlessServiceToLookUp, validateStatefulSet } from './validate.js';
