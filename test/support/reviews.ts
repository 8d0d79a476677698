import { randomUUID } from 'node:crypto';
import type { V1Scale, V1Service } from '@kubernetes/client-node';
import { admissionReview } from './fixtures.js';

/** An autoscaling/v1 Scale as the API server builds it for `statefulsets/scale`. */
export function scale(name: string, replicas: number, namespace = 'grade-submission'): V1Scale {
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name, namespace, uid: randomUUID(), resourceVersion: '4242' },
    // autoscaling/v1 omits replicas when it is 0 (omitempty).
    spec: replicas === 0 ? {} : { replicas },
    status: { replicas: 1, selector: `app.kubernetes.io/name=${name}` },
  };
}

/** The review `kubectl scale statefulset <name> --replicas=<to>` sends to a validating webhook. */
export function scaleReview(name: string, to: number, from = 1, namespace = 'grade-submission') {
  return admissionReview({
    operation: 'UPDATE',
    namespace,
    resource: { group: 'apps', version: 'v1', resource: 'statefulsets' },
    subResource: 'scale',
    kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
    object: scale(name, to, namespace),
    oldObject: scale(name, from, namespace),
  });
}

const serviceResource = { group: '', version: 'v1', resource: 'services' };
const serviceKind = { group: '', version: 'v1', kind: 'Service' };

/** `kubectl delete service` (or an Argo CD prune): object null, oldObject the Service. */
export function serviceDeletion(old: V1Service) {
  return admissionReview({
    operation: 'DELETE',
    resource: serviceResource,
    kind: serviceKind,
    oldObject: old,
  });
}

/** An UPDATE of a Service from `old` to `updated`. */
export function serviceUpdate(old: V1Service, updated: V1Service) {
  return admissionReview({
    operation: 'UPDATE',
    resource: serviceResource,
    kind: serviceKind,
    object: updated,
    oldObject: old,
  });
}
