import { median } from './stats.js';

/** A heading line, or one figure beside its baseline. */
export type Row =
  | { section: string }
  | {
      figure: string;
      stsGuard: string;
      baseline: string;
      /** sts-guard ÷ baseline. */
      ratio?: number;
      target?: string;
      pass?: boolean;
      note?: string;
    };

const HEADERS = ['figure', 'sts-guard', 'baseline', 'ratio', 'target', 'result'] as const;

/** The plain-text table `npm run bench` prints; pass/fail only when `judge` (not in smoke mode). */
export function renderTable(input: { title: string; rows: Row[]; notes: string[]; judge: boolean }): string {
  const cells = input.rows.map((row) =>
    'section' in row
      ? row
      : [
          `  ${row.figure}`,
          row.stsGuard,
          row.baseline,
          row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
          row.target ?? '',
          row.pass === undefined
            ? (row.note ?? '')
            : !input.judge
              ? 'n/a (smoke)'
              : row.pass
                ? 'PASS'
                : 'MISS',
        ],
  );
  const widths = HEADERS.map((header, i) =>
    Math.max(header.length, ...cells.map((c) => (Array.isArray(c) ? c[i]!.length : 0))),
  );
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i === 0 || i === values.length - 1 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [input.title, '', line(HEADERS), line(widths.map((w) => '-'.repeat(w)))];
  for (const c of cells) out.push(Array.isArray(c) ? line(c) : c.section);
  const judged = input.rows.filter(
    (r): r is Extract<Row, { figure: string }> => 'figure' in r && r.pass !== undefined,
  );
  out.push('');
  if (input.judge) {
    const missed = judged.filter((r) => !r.pass);
    out.push(
      missed.length === 0
        ? `targets: all ${judged.length} met`
        : `targets: ${judged.length - missed.length} of ${judged.length} met; missed: ${missed.map((r) => r.figure.trim()).join('; ')}`,
    );
  }
  for (const note of input.notes) out.push(`note: ${note}`);
  return `${out.join('\n')}\n`;
}

/** One workload of the CPU-per-review table: µs per review of each server, one value per round. */
export interface CpuRow<W extends { label: string } = { label: string }> {
  workload: W;
  rounds: Record<'sts-guard' | 'fastify' | 'baseline', number[]> & { compare?: number[] };
  /** Reviews per second each server answered in the same rounds (the load generator's count). */
  rates?: Record<'sts-guard' | 'fastify' | 'baseline', number[]> & { compare?: number[] };
}

/** `123 [118–131]`: the median of the rounds and their range. */
const spread = (values: number[]) =>
  `${Math.round(median(values))} [${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}]`;

/**
 * sts-guard's CPU per review ÷ another server's, as the median of the per-round ratios: the
 * servers of one round run back to back, so a neighbour's burst that lands on a round moves
 * both figures of that round alike, and drops out of the ratio.
 */
export function pairedRatio(row: CpuRow, other: 'fastify' | 'baseline' | 'compare'): number {
  const others = row.rounds[other] ?? [];
  const ratios = row.rounds['sts-guard'].map((value, i) => value / others[i]!);
  return median(ratios);
}

/** The CPU-per-review table: each server's median and range, and sts-guard's ratios to the other two. */
export function renderCpuTable(input: { title: string; rows: CpuRow[]; notes: string[] }): string {
  // With --compare, the other build's figures and this build's ratio to them come last.
  const compared = input.rows.some((row) => row.rounds.compare !== undefined);
  const headers = [
    'workload',
    'sts-guard',
    'Fastify alone',
    'bare node:https',
    '÷ Fastify',
    '÷ bare',
    ...(compared ? ['compared build', '÷ compared'] : []),
  ];
  const cells = input.rows.map((row) => [
    row.workload.label,
    spread(row.rounds['sts-guard']),
    spread(row.rounds.fastify),
    spread(row.rounds.baseline),
    `${pairedRatio(row, 'fastify').toFixed(2)}×`,
    `${pairedRatio(row, 'baseline').toFixed(2)}×`,
    ...(compared ? [spread(row.rounds.compare ?? []), `${pairedRatio(row, 'compare').toFixed(2)}×`] : []),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [input.title, '', line(headers), line(widths.map((w) => '-'.repeat(w)))];
  for (const c of cells) out.push(line(c));
  out.push('');
  for (const note of input.notes) out.push(`note: ${note}`);
  return `${out.join('\n')}\n`;
}

/**
 * The CPU rounds' throughput: each server's reviews/s while it answered its fixed amount as fast
 * as it could, as a paired ratio to the bare server's in the same round (issue 21's figure).
 */
export function renderRateTable(input: { title: string; rows: CpuRow[] }): string {
  const rows = input.rows.filter((row) => row.rates !== undefined);
  const compared = rows.some((row) => row.rates?.compare !== undefined);
  const ratio = (row: CpuRow, kind: 'sts-guard' | 'fastify' | 'compare') => {
    const rates = row.rates!;
    const values = rates[kind] ?? [];
    return `${median(values.map((v, i) => v / rates.baseline[i]!)).toFixed(2)}×`;
  };
  const headers = [
    'workload',
    'sts-guard',
    'Fastify alone',
    'bare node:https',
    ...(compared ? ['compared build'] : []),
    'sts-guard ÷ bare',
    'Fastify ÷ bare',
    ...(compared ? ['compared ÷ bare'] : []),
  ];
  const cells = rows.map((row) => [
    row.workload.label,
    spread(row.rates!['sts-guard']),
    spread(row.rates!.fastify),
    spread(row.rates!.baseline),
    ...(compared ? [spread(row.rates!.compare ?? [])] : []),
    ratio(row, 'sts-guard'),
    ratio(row, 'fastify'),
    ...(compared ? [ratio(row, 'compare')] : []),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [input.title, '', line(headers), line(widths.map((w) => '-'.repeat(w)))];
  for (const c of cells) out.push(line(c));
  return `${out.join('\n')}\n`;
}
