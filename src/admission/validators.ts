import type { V1Scale, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import * as generated from '../generated/admission-validators.js';
import type { Validator } from '../validation.js';
import type { AdmissionRequest, AdmissionReview } from './types.js';

// The schemas of ./schema.ts, compiled ahead of time: no schema is compiled at start-up.
export const isAdmissionReview = generated.admissionReview as unknown as Validator<
  AdmissionReview & { request: AdmissionRequest }
>;
export const isStatefulSet = generated.statefulSet as unknown as Validator<V1StatefulSet>;
export const isScale = generated.scale as unknown as Validator<V1Scale>;
export const isService = generated.service as unknown as Validator<V1Service>;
