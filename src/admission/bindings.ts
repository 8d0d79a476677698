import type { ReviewContext } from '../pipeline/ports.js';
import type { Operation } from '../policy/index.js';
import {
  type Handler,
  mutateStatefulSet,
  validateScale,
  validateService,
  validateStatefulSet,
} from './handlers.js';
import { type ReviewResult, skipped } from './responses.js';
import type { AdmissionRequest } from './types.js';

/** The two paths the webhook configurations call (deploy/webhooks/webhooks.yaml). */
export const WEBHOOK_PATHS = ['/validate', '/mutate'] as const;
export type WebhookPath = (typeof WEBHOOK_PATHS)[number];

/**
 * Which handler serves which request: the resource (group and plural), the subresource ('' for
 * the object itself) and the operations, per webhook path. It mirrors the rules the webhook
 * configurations register; test/admission/bindings.test.ts holds the two to each other.
 */
export interface Binding {
  path: WebhookPath;
  group: string;
  resource: string;
  subResource: string;
  operations: readonly Operation[];
  handler: Handler;
}

export const BINDINGS: readonly Binding[] = [
  {
    path: '/mutate',
    group: 'apps',
    resource: 'statefulsets',
    subResource: '',
    operations: ['CREATE', 'UPDATE'],
    handler: mutateStatefulSet,
  },
  {
    path: '/validate',
    group: 'apps',
    resource: 'statefulsets',
    subResource: '',
    operations: ['CREATE', 'UPDATE'],
    handler: validateStatefulSet,
  },
  {
    path: '/validate',
    group: 'apps',
    resource: 'statefulsets',
    subResource: 'scale',
    operations: ['CREATE', 'UPDATE'],
    handler: validateScale,
  },
  {
    path: '/validate',
    group: '',
    resource: 'services',
    subResource: '',
    operations: ['CREATE', 'UPDATE', 'DELETE'],
    handler: validateService,
  },
];

/** The handler bound to this request on `path`, or undefined: a request sts-guard lets through. */
export function handlerFor(path: WebhookPath, request: AdmissionRequest): Handler | undefined {
  const subResource = request.subResource ?? '';
  for (const binding of BINDINGS) {
    if (
      binding.path === path &&
      binding.resource === request.resource.resource &&
      binding.group === request.resource.group &&
      binding.subResource === subResource &&
      binding.operations.includes(request.operation)
    ) {
      return binding.handler;
    }
  }
  return undefined;
}

/** The answer to `request` on `path`: its bound handler's, or allowed without looking. */
export function answerReview(
  path: WebhookPath,
  request: AdmissionRequest,
  ctx: ReviewContext,
): ReviewResult | Promise<ReviewResult> {
  const handler = handlerFor(path, request);
  return handler ? handler(request, ctx) : skipped(request.uid);
}
