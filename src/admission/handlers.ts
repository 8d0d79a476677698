import type { ReviewContext } from '../pipeline/ports.js';
import { validateScaleReview } from '../pipeline/scale.js';
import { validateServiceReview } from '../pipeline/service.js';
import { mutateStatefulSetReview, validateStatefulSetReview } from '../pipeline/statefulset.js';
import { decodeScaleReview, decodeServiceReview, decodeStatefulSetReview } from './decode.js';
import { decided, mutated, type ReviewResult } from './responses.js';
import type { AdmissionRequest } from './types.js';

/** One kind of review: decode the request, run the pipeline's stage, build the answer. */
export type Handler = (request: AdmissionRequest, ctx: ReviewContext) => ReviewResult | Promise<ReviewResult>;

export const validateStatefulSet: Handler = async (request, ctx) => {
  const { decision, lookups } = await validateStatefulSetReview(decodeStatefulSetReview(request), ctx);
  return decided(request.uid, decision, lookups);
};

export const mutateStatefulSet: Handler = (request, ctx) => {
  const stage = mutateStatefulSetReview(decodeStatefulSetReview(request), ctx);
  // Most mutations need no look-up: answered without a promise.
  return stage instanceof Promise
    ? stage.then(({ mutation, lookups }) => mutated(request.uid, mutation, lookups))
    : mutated(request.uid, stage.mutation, stage.lookups);
};

export const validateScale: Handler = async (request, ctx) => {
  const { decision, lookups } = await validateScaleReview(decodeScaleReview(request), ctx);
  return decided(request.uid, decision, lookups);
};

export const validateService: Handler = async (request, ctx) => {
  const { decision, lookups } = await validateServiceReview(decodeServiceReview(request), ctx);
  return decided(request.uid, decision, lookups);
};
