import { readFile } from 'node:fs/promises';
import type { ErrorObject } from 'ajv';
import { parse } from 'yaml';
import * as generated from '../generated/exceptions-validator.js';
import type { ExceptionList } from '../policy/index.js';
import type { Validator } from '../validation.js';

/** The key of ConfigMap `sts-guard-exceptions` that holds the list (deploy/base/exceptions.yaml). */
export const EXCEPTIONS_KEY = 'exceptions.yaml';

// src/exceptions/schema.ts, compiled ahead of time (scripts/compile-schemas.ts).
const isExceptionList = generated.exceptionList as unknown as Validator<
  ExceptionList & { apiVersion: string; kind: string }
>;

/** An exception list that cannot be used, with every reason in its message. */
export class ExceptionListError extends Error {
  override readonly name = 'ExceptionListError';
}

/** Ajv's errors as a person reads them: where, what, and what is allowed. */
function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const at = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replaceAll('/', '.');
      const params = e.params as {
        additionalProperty?: string;
        allowedValues?: unknown[];
        allowedValue?: unknown;
      };
      if (params.additionalProperty) return `${at}: unknown field "${params.additionalProperty}"`;
      if (params.allowedValues)
        return `${at}: must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
      if (params.allowedValue !== undefined) return `${at}: must be ${JSON.stringify(params.allowedValue)}`;
      return `${at}: ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads an exception list: the ExceptionList document itself, or the ConfigMap manifest that
 * carries it under `exceptions.yaml` (so `sts-guard check --exceptions` takes the very file the
 * platform team commits). Throws ExceptionListError naming every problem.
 */
export function parseExceptionList(text: string, source: string): ExceptionList {
  let document: unknown;
  try {
    document = parse(text, { maxAliasCount: 50 });
  } catch (error) {
    throw new ExceptionListError(`${source}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (isRecord(document) && document.kind === 'ConfigMap') {
    const data = isRecord(document.data) ? document.data[EXCEPTIONS_KEY] : undefined;
    if (typeof data !== 'string') {
      throw new ExceptionListError(`${source}: the ConfigMap has no data key "${EXCEPTIONS_KEY}"`);
    }
    return parseExceptionList(data, `${source} (${EXCEPTIONS_KEY})`);
  }
  // An empty file (or ConfigMap key) is an empty list, so the ConfigMap can ship with none.
  if (document === null || document === undefined) return { exceptions: [] };
  if (!isExceptionList(document)) {
    throw new ExceptionListError(`${source}: not a valid ExceptionList: ${describe(isExceptionList.errors)}`);
  }
  const seen = new Set<string>();
  const duplicates = document.exceptions.map((e) => e.name).filter((n) => seen.has(n) || !seen.add(n));
  if (duplicates.length > 0) {
    throw new ExceptionListError(
      `${source}: exception names must be unique: ${[...new Set(duplicates)].join(', ')}`,
    );
  }
  return { exceptions: document.exceptions };
}

/** Reads and checks an exception list file. */
export async function readExceptionList(path: string): Promise<ExceptionList> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ExceptionListError(`${path}: cannot read: ${(error as Error).message}`);
  }
  return parseExceptionList(text, path);
}
