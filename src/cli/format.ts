import { stringify } from 'yaml';
import type { CheckReport, StatefulSetCheck } from './check.js';

export interface FormatOptions {
  /** Also show the mutating webhook's JSON Patch and the StatefulSet it produces. */
  showMutation: boolean;
}

/** What each `sts-guard.io/injected` entry means to a reader. */
const INJECTED_DESCRIPTIONS: Record<string, string> = {
  'bootstrap-hook': 'the replica-set bootstrap postStart hook',
  storage: 'a volumeClaimTemplate mounted at the data path',
};

const objectName = (c: StatefulSetCheck) => `StatefulSet ${c.namespace}/${c.name}`;

/**
 * The policy's warnings start with `StatefulSet "ns/name"`, and a rule in warn mode adds
 * `[rule]`; in the table the object and the rule have columns of their own.
 */
function splitWarning(check: StatefulSetCheck, warning: string): { rule: string; text: string } {
  const prefix = `StatefulSet "${check.namespace}/${check.name}"`;
  if (!warning.startsWith(prefix)) return { rule: '-', text: warning };
  const rest = warning.slice(prefix.length);
  const ruled = rest.match(/^ \[([a-z-]+)\]([^:]*): /);
  if (ruled)
    return {
      rule: ruled[1] ?? '-',
      text: `${ruled[2] ? `${ruled[2].trim()} ` : ''}${rest.slice(ruled[0].length)}`,
    };
  return { rule: '-', text: rest.replace(/^: /, '') };
}

function admittedDetail(check: StatefulSetCheck): string {
  if (!check.database) return 'not a database sts-guard knows; nothing to check';
  if (check.steppedAside) return `left to its controller: ${check.steppedAside}`;
  if (check.injected.length === 0) return 'nothing to inject';
  const what = check.injected.map((i) => INJECTED_DESCRIPTIONS[i] ?? i).join(' and ');
  return `the webhook injects ${what} (--show-mutation shows the patch)`;
}

type Finding = [rule: string, verdict: string, details: string];
type Row = [object: string, ...Finding];

function rowsOf(check: StatefulSetCheck): Row[] {
  const rows: Finding[] = [];
  for (const v of check.violations) {
    rows.push([v.rule, 'denied', `${v.problem}\nfix: ${v.fix.replaceAll('\n', '\n  ')}`]);
  }
  for (const w of check.warnings) {
    const { rule, text } = splitWarning(check, w);
    rows.push([rule, 'warning', text]);
  }
  if (check.allowed) rows.unshift(['-', 'admitted', admittedDetail(check)]);
  const object = `${objectName(check)}\n  ${check.source}`;
  return rows.map((row, i): Row => [i === 0 ? object : '', ...row]);
}

/** Columns as wide as their widest line; the last column's cells may span several lines. */
function renderTable(header: Row, groups: Row[][]): string {
  const widths = header.map((_, column) =>
    Math.max(
      header[column]?.length ?? 0,
      ...groups.flat().flatMap((row) => (row[column] ?? '').split('\n').map((l) => l.length)),
    ),
  );
  const renderRow = (row: Row) => {
    const cells = row.map((cell) => cell.split('\n'));
    const height = Math.max(...cells.map((c) => c.length));
    const lines: string[] = [];
    for (let i = 0; i < height; i++) {
      const parts = cells.map((c, column) =>
        column === cells.length - 1 ? (c[i] ?? '') : (c[i] ?? '').padEnd(widths[column] ?? 0),
      );
      lines.push(parts.join('  ').trimEnd());
    }
    return lines.join('\n');
  };
  // A blank line between StatefulSets: their multi-line fixes would otherwise run together.
  return `${renderRow(header)}\n${groups.map((rows) => rows.map(renderRow).join('\n')).join('\n\n')}`;
}

function summary(report: CheckReport): string {
  const denied = report.statefulSets.filter((c) => !c.allowed).length;
  const others = `${report.passedThrough} other object${report.passedThrough === 1 ? '' : 's'} passed through`;
  const count = report.statefulSets.length;
  if (count === 0) return `No StatefulSets in the input; ${others}.`;
  return `${count} StatefulSet${count === 1 ? '' : 's'} checked: ${count - denied} admitted, ${denied} denied; ${others}.`;
}

function mutationText(check: StatefulSetCheck): string {
  const title = `# ${objectName(check)} (${check.source})`;
  if (check.patch.length === 0) return `${title}: the webhook changes nothing`;
  return [
    `${title}: JSON Patch`,
    JSON.stringify(check.patch, null, 2),
    `# ${objectName(check)} after the patch`,
    // lineWidth 0: never fold, so the bootstrap script and YAML snippets stay copy-pastable
    stringify(check.mutated, { lineWidth: 0 }).trimEnd(),
  ].join('\n');
}

/** The default output: one group of rows per StatefulSet, then a summary line. */
export function formatTable(report: CheckReport, options: FormatOptions): string {
  const parts: string[] = [];
  if (report.statefulSets.length > 0) {
    parts.push(
      renderTable(['OBJECT', 'RULE', 'VERDICT', 'PROBLEM AND FIX'], report.statefulSets.map(rowsOf)),
    );
  }
  if (options.showMutation) parts.push(...report.statefulSets.map(mutationText));
  parts.push(summary(report));
  return `${parts.join('\n\n')}\n`;
}

/**
 * `--output json`: a stable shape for machines. Fields are only ever added; `mutated` is present
 * with --show-mutation.
 */
export function formatJson(report: CheckReport, options: FormatOptions): string {
  const denied = report.statefulSets.filter((c) => !c.allowed).length;
  const document = {
    allowed: denied === 0,
    summary: {
      statefulSets: report.statefulSets.length,
      admitted: report.statefulSets.length - denied,
      denied,
      passedThrough: report.passedThrough,
    },
    objects: report.statefulSets.map((c) => ({
      source: c.source,
      kind: c.kind,
      namespace: c.namespace,
      name: c.name,
      allowed: c.allowed,
      ...(c.allowed ? {} : { message: c.message }),
      violations: c.violations.map(({ rule, problem, fix }) => ({ rule, problem, fix })),
      warnings: c.warnings,
      patch: c.patch,
      exemptions: c.exemptions,
      ...(c.steppedAside ? { steppedAside: c.steppedAside } : {}),
      ...(options.showMutation ? { mutated: c.mutated } : {}),
    })),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}
