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
