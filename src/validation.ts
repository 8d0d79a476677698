import type { ErrorObject } from 'ajv';

/** A validator compiled ahead of time by Ajv (scripts/compile-schemas.ts, src/generated/). */
export interface Validator<T> {
  (data: unknown): data is T;
  errors?: ErrorObject[] | null;
}

/** Ajv's `errorsText`, without an Ajv instance: "object/spec/replicas must be integer, …". */
export function describeErrors(errors: ErrorObject[] | null | undefined, dataVar: string): string {
  if (!errors || errors.length === 0) return 'no errors';
  return errors.map((e) => `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}`).join(', ');
}
