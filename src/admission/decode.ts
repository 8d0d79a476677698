import type { ScaleReview, ServiceReview, StatefulSetReview } from '../policy/index.js';
import { describeErrors, type Validator } from '../validation.js';
import { MalformedReviewError } from './parse.js';
import type { AdmissionRequest } from './types.js';
import { isScale, isService, isStatefulSet } from './validators.js';

/**
 * AdmissionRequest in, the policy's typed review out. An object of the wrong shape is a
 * MalformedReviewError, which the server answers with HTTP 400: the API server never sends one,
 * so it is a client bug, not a decision.
 */

/** Checks `value` against a schema validator; absent is undefined, the wrong shape throws. */
function decoded<T>(validator: Validator<T>, value: unknown, field: string, what: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (!validator(value)) {
    throw new MalformedReviewError(
      `request.${field} is not ${what}: ${describeErrors(validator.errors, field)}`,
    );
  }
  return value;
}

const STATEFUL_SET = 'an apps/v1 StatefulSet';
const SCALE = 'an autoscaling/v1 Scale';
const SERVICE = 'a v1 Service';

export function decodeStatefulSetReview(request: AdmissionRequest): StatefulSetReview {
  const object = decoded(isStatefulSet, request.object, 'object', STATEFUL_SET);
  const oldObject = decoded(isStatefulSet, request.oldObject, 'oldObject', STATEFUL_SET);
  return {
    operation: request.operation,
    // metadata.namespace may be empty on CREATE; the request's namespace is where it lands.
    namespace:
      request.namespace || object?.metadata?.namespace || oldObject?.metadata?.namespace || 'default',
    object,
    oldObject,
  };
}

/** `kubectl scale statefulset`: resource apps/statefulsets, subresource scale, kind autoscaling/v1 Scale. */
export function decodeScaleReview(request: AdmissionRequest): ScaleReview {
  const object = decoded(isScale, request.object, 'object', SCALE);
  const oldObject = decoded(isScale, request.oldObject, 'oldObject', SCALE);
  return {
    operation: request.operation,
    namespace: request.namespace || object?.metadata?.namespace || 'default',
    name: request.name || object?.metadata?.name || oldObject?.metadata?.name || '',
    object,
    oldObject,
  };
}

/** A core v1 Service; on DELETE `object` is null and `oldObject` (when sent) is the Service. */
export function decodeServiceReview(request: AdmissionRequest): ServiceReview {
  const object = decoded(isService, request.object, 'object', SERVICE);
  const oldObject = decoded(isService, request.oldObject, 'oldObject', SERVICE);
  return {
    operation: request.operation,
    namespace:
      request.namespace || oldObject?.metadata?.namespace || object?.metadata?.namespace || 'default',
    name: request.name || oldObject?.metadata?.name || object?.metadata?.name || '',
    object,
    oldObject,
  };
}
