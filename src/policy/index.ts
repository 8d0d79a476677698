/** The pure policy: review in, decision and patch out. No I/O, no clock. */
export { describe, desiredReplicas, detectDatabase, inspectServer } from './detect.js';
export {
  type ExceptionList,
  exceptionFor,
  type LabelSelector,
  NO_EXCEPTIONS,
  type PolicyException,
} from './exceptions.js';
export { INJECTED_ANNOTATION, mutateStatefulSet } from './mutate.js';
export { STEPPED_ASIDE_ANNOTATION, stepAsideReason } from './owners.js';
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
export {
  configMapsToLookUp,
  EXCEPTION_ANNOTATION,
  headlessServiceToLookUp,
  validateStatefulSet,
} from './validate.js';
