import type { V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import type { JsonPatchOperation } from '../../src/policy/index.js';

/** Applies a patch the way the API server does: every operation must apply, or none. */
export const applied = (object: V1StatefulSet, patch: JsonPatchOperation[]): V1StatefulSet =>
  jsonpatch.applyPatch(structuredClone(object), patch as jsonpatch.Operation[], true, false).newDocument;
