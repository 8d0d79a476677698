/** Cumulative bucket counts of one Prometheus histogram, summed over the series that match. */
export type Buckets = Map<number, number>;

export function histogramBuckets(text: string, metric: string, labels: Record<string, string>): Buckets {
  const buckets: Buckets = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}_bucket{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

/** after − before, bucket by bucket: the observations made in between. */
export function delta(after: Buckets, before: Buckets): Buckets {
  return new Map([...after].map(([le, n]) => [le, n - (before.get(le) ?? 0)]));
}

/**
 * The q-quantile as Prometheus' histogram_quantile() computes it: linear interpolation inside the
 * bucket the rank falls in. Only as fine as the buckets.
 */
export function quantile(buckets: Buckets, q: number): number {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(count - below, 1e-9);
    }
    lower = le;
    below = count;
  }
  return lower;
}

export function count(buckets: Buckets): number {
  return Math.max(0, ...buckets.values());
}
