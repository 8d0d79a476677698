// The parts of @kubernetes/client-node the audit uses besides the webhook's (../cluster/library.ts):
// reports are custom objects, the Lease is coordination.k8s.io, discovery is the API group list.
// Kept apart so the webhook's lazily loaded client chunk does not grow by them.

export { ApisApi, CoordinationV1Api, CustomObjectsApi, V1MicroTime } from '@kubernetes/client-node';
export * from '../cluster/library.js';
