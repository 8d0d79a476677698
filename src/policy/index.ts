/** The pure policy: review in, decision and patch out. No I/O, no clock. */
export { describe, desiredReplicas, detectDatabase } from './detect.js';
export { INJECTED_ANNOTATION, mutateStatefulSet } from './mutate.js';
export * from './types.js';
export { headlessServiceToLookUp, validateStatefulSet } from './validate.js';
