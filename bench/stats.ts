/** Nearest-rank percentile of an ascending array; NaN when it is empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** True when this module is the process's entry script (run directly or forked), not imported. */
export const isEntry = (moduleUrl: string) =>
  process.argv[1] !== undefined && new URL(moduleUrl).pathname === process.argv[1];
