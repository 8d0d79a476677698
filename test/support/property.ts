import fc from 'fast-check';
import type { Test } from 'tap';

/**
 * Runs a fast-check property and records its verdict as assertions that can fail: no
 * counterexample (fast-check's report, with the shrunk input and the error, is the diagnostic)
 * and every one of the `numRuns` generated cases run, none cut short.
 */
export async function propertyHolds<Ts>(
  t: Test,
  message: string,
  property: fc.IRawProperty<Ts>,
  numRuns: number,
): Promise<void> {
  const details = await fc.check(property, { numRuns });
  t.notOk(details.failed, message, details.failed ? { report: fc.defaultReportMessage(details) } : {});
  t.equal(details.numRuns, numRuns, `${numRuns.toLocaleString('en-US')} generated cases run`);
}
