import { RULE_IDS } from '../policy/types.js';

/** A DNS-1123 label or subdomain, as Kubernetes names and namespaces are. */
const NAME = {
  type: 'string',
  minLength: 1,
  maxLength: 253,
  pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
} as const;
const NAMES = { type: 'array', minItems: 1, items: NAME } as const;

/**
 * The platform team's exception list (kept in ConfigMap `sts-guard-exceptions`, key
 * `exceptions.yaml`): which StatefulSets are exempt from which rules, and why. Compiled ahead of
 * time (scripts/compile-schemas.ts) into src/generated/exceptions-validator.ts.
 */
export const exceptionListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'exceptions'],
  properties: {
    apiVersion: { const: 'sts-guard.io/v1' },
    kind: { const: 'ExceptionList' },
    exceptions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'reason', 'rules', 'match'],
        properties: {
          name: NAME,
          // Short enough that the warning naming it stays within the 256 characters kubectl shows.
          reason: { type: 'string', minLength: 1, maxLength: 120 },
          rules: { type: 'array', minItems: 1, items: { enum: [...RULE_IDS, '*'] } },
          match: {
            type: 'object',
            additionalProperties: false,
            // An exception that matches every StatefulSet is a rule turned off: use RULE_* = off for that.
            minProperties: 1,
            properties: {
              namespaces: NAMES,
              names: NAMES,
              selector: {
                type: 'object',
                additionalProperties: false,
                minProperties: 1,
                properties: {
                  matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
                  matchExpressions: {
                    type: 'array',
                    items: {
                      type: 'object',
                      additionalProperties: false,
                      required: ['key', 'operator'],
                      properties: {
                        key: { type: 'string', minLength: 1 },
                        operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
                        values: { type: 'array', items: { type: 'string' } },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;
