import { stringify } from 'yaml';
import { resultStatus } from '../audit/results.js';
import type { Exemption, Finding, JsonPatchOperation, Violation } from '../policy/index.js';
import { RULE_IDS } from '../policy/index.js';
import type { CheckReport, StatefulSetCheck } from './check.js';

/**
 * The output of `sts-guard check` and `sts-guard audit`: one table or JSON shape for both, so a
 * reader or a script that knows one knows the other.
 */

export interface FormatOptions {
  /** Also show the mutating webhook's JSON Patch and the StatefulSet it produces. */
  showMutation: boolean;
}

/** One judged object, as both commands report it. */
export interface ObjectCheck {
  /** `file:line` (check), or `uid <uid>` (audit: the name of its policy report). */
  source: string;
  kind: 'StatefulSet' | 'Service';
  namespace: string;
  name: string;
  database: string | undefined;
  allowed: boolean;
  message: string;
  violations: Violation[];
  findings: Finding[];
  warnings: string[];
  patch: JsonPatchOperation[];
  injected: string[];
  mutated?: unknown;
  exemptions: Exemption[];
  steppedAside: string | undefined;
}

/** What each `sts-guard.io/injected` entry means to a reader. */
const INJECTED_DESCRIPTIONS: Record<string, string> = {
  'bootstrap-hook': 'the replica-set bootstrap postStart hook',
  storage: 'a volumeClaimTemplate mounted at the data path',
};

const objectName = (c: ObjectCheck) => `${c.kind} ${c.namespace}/${c.name}`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * The policy's warnings start with `StatefulSet "ns/name"` (or `Service "ns/name"`), and a rule
 * in warn mode adds `[rule]`; in the table the object and the rule have columns of their own.
 */
function splitWarning(check: ObjectCheck, warning: string): { rule: string; text: string } {
  const prefix = `${check.kind} "${check.namespace}/${check.name}"`;
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

function checkDetail(check: ObjectCheck): string {
  if (!check.database) return 'not a database sts-guard knows; nothing to check';
  if (check.steppedAside) return `left to its controller: ${check.steppedAside}`;
  if (check.injected.length === 0) return 'nothing to inject';
  const what = check.injected.map((i) => INJECTED_DESCRIPTIONS[i] ?? i).join(' and ');
  return `the webhook injects ${what} (--show-mutation shows the patch)`;
}

function auditDetail(check: ObjectCheck): string {
  if (check.steppedAside) return `left to its controller: ${check.steppedAside}`;
  return check.findings.length > 0 ? 'a CREATE of it today would be admitted' : 'no finding';
}

type Row = [object: string, rule: string, verdict: string, details: string];

function rowsOf(check: ObjectCheck, detail: (c: ObjectCheck) => string): Row[] {
  const rows: Array<[string, string, string]> = [];
  for (const v of check.violations) {
    rows.push([v.rule, 'denied', `${v.problem}${v.fix ? `\nfix: ${v.fix.replaceAll('\n', '\n  ')}` : ''}`]);
  }
  for (const w of check.warnings) {
    const { rule, text } = splitWarning(check, w);
    rows.push([rule, 'warning', text]);
  }
  if (check.allowed) rows.unshift(['-', 'admitted', detail(check)]);
  const object = `${objectName(check)}\n  ${check.source}`;
  return rows.map((row, i): Row => [i === 0 ? object : '', ...row]);
}

const VERDICTS: Record<Finding['outcome'], string> = { deny: 'denied', warn: 'warning', waived: 'waived' };

/**
 * The audit's rows come from the findings themselves, so every row names its rule (an advisory's
 * admission warning does not) and a waiver shows its exception.
 */
function findingRows(check: ObjectCheck): Row[] {
  const own = `${check.kind} "${check.namespace}/${check.name}" `;
  const rows = check.findings.map((f): [string, string, string] => {
    const problem = f.problem.startsWith(`${own}[${f.check}]: `)
      ? f.problem.slice(`${own}[${f.check}]: `.length)
      : f.problem;
    const waiver = f.exception ? `\nwaived by exception "${f.exception.name}": ${f.exception.reason}` : '';
    const fix = f.fix && f.outcome !== 'waived' ? `\nfix: ${f.fix.replaceAll('\n', '\n  ')}` : '';
    return [f.check, VERDICTS[f.outcome], `${problem}${waiver}${fix}`];
  });
  if (check.allowed) rows.unshift(['-', 'admitted', auditDetail(check)]);
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
  // A blank line between objects: their multi-line fixes would otherwise run together.
  return `${renderRow(header)}\n${groups.map((rows) => rows.map(renderRow).join('\n')).join('\n\n')}`;
}

const HEADER: Row = ['OBJECT', 'RULE', 'VERDICT', 'PROBLEM AND FIX'];

type RuleCounts = Record<string, Record<'fail' | 'error' | 'warn' | 'skip', number>>;

/**
 * Every finding counted by rule and by the result a policy report gives it (fail, error, warn,
 * skip: src/audit/results.ts), the rules first, then the advisories that found anything.
 */
export function ruleCounts(objects: readonly ObjectCheck[]): RuleCounts {
  const counts: RuleCounts = {};
  const entry = (rule: string) => {
    counts[rule] ??= { fail: 0, error: 0, warn: 0, skip: 0 };
    return counts[rule];
  };
  // service-protection judges deletions and type changes: nothing a stored object can show.
  for (const rule of RULE_IDS) if (rule !== 'service-protection') entry(rule);
  for (const object of objects) {
    for (const finding of object.findings) {
      const status = resultStatus(finding);
      if (status !== 'pass') entry(finding.check)[status]++;
    }
  }
  return counts;
}

function ruleSummary(objects: readonly ObjectCheck[]): string {
  return Object.entries(ruleCounts(objects))
    .map(([rule, count]) => {
      const parts = (['fail', 'error', 'warn', 'skip'] as const)
        .filter((status) => count[status] > 0)
        .map((status) => `${count[status]} ${status}`);
      return `rule ${rule}: ${parts.length > 0 ? parts.join(', ') : 'no findings'}`;
    })
    .join('\n');
}

function checkSummary(report: CheckReport): string {
  const denied = report.statefulSets.filter((c) => !c.allowed).length;
  const others = `${plural(report.passedThrough, 'other object')} passed through`;
  const count = report.statefulSets.length;
  if (count === 0) return `No StatefulSets in the input; ${others}.`;
  return `${plural(count, 'StatefulSet')} checked: ${count - denied} admitted, ${denied} denied; ${others}.`;
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
      renderTable(
        HEADER,
        report.statefulSets.map((c) => rowsOf(c, checkDetail)),
      ),
    );
  }
  if (options.showMutation) parts.push(...report.statefulSets.map(mutationText));
  parts.push(checkSummary(report));
  return `${parts.join('\n\n')}\n`;
}

/** One object of the JSON output. Fields are only ever added. */
function jsonObject(c: ObjectCheck, options: FormatOptions) {
  return {
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
    // Every finding, as the audit's policy reports give it: check id, result, problem, fix, exception.
    findings: c.findings.map((f) => ({
      rule: f.check,
      result: resultStatus(f),
      outcome: f.outcome,
      problem: f.problem,
      ...(f.fix ? { fix: f.fix } : {}),
      ...(f.exception ? { exception: f.exception } : {}),
      ...(f.unverified ? { unverified: true } : {}),
    })),
    ...(options.showMutation ? { mutated: c.mutated } : {}),
  };
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
      rules: ruleCounts(report.statefulSets),
    },
    objects: report.statefulSets.map((c) => jsonObject(c, options)),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** What `sts-guard audit` found in a cluster. */
export interface AuditReport {
  /** Database StatefulSets (each one) and Services with findings, in namespace and name order. */
  objects: ObjectCheck[];
  /** Every StatefulSet listed (database or not) and every Service listed. */
  statefulSetsListed: number;
  servicesListed: number;
  /** What --write-reports wrote, when given. */
  reports?: {
    api: string;
    created: number;
    updated: number;
    deleted: number;
    unchanged: number;
    capped: number;
  };
  /** Why --write-reports wrote nothing, or not everything. */
  reportsError?: string;
}

function auditSummary(report: AuditReport): string {
  const databases = report.objects.filter((o) => o.kind === 'StatefulSet');
  const denied = report.objects.filter((o) => !o.allowed);
  const services = report.objects.filter((o) => o.kind === 'Service').length;
  const others = report.statefulSetsListed - databases.length;
  return [
    `${plural(databases.length, 'database StatefulSet')} audited: ${databases.filter((d) => d.allowed).length} admitted, ${denied.filter((d) => d.kind === 'StatefulSet').length} denied`,
    `${services} of ${plural(report.servicesListed, 'Service')} with findings${denied.some((d) => d.kind === 'Service') ? ` (${denied.filter((d) => d.kind === 'Service').length} denied)` : ''}`,
    `${plural(others, 'other StatefulSet')} with nothing to check.`,
  ].join('; ');
}

function reportsLine(reports: NonNullable<AuditReport['reports']>): string {
  return `Reports (${reports.api}): ${reports.created} created, ${reports.updated} updated, ${reports.deleted} deleted, ${reports.unchanged} unchanged${reports.capped > 0 ? `, ${reports.capped} left out by AUDIT_MAX_REPORTS` : ''}.`;
}

/** `sts-guard audit`'s table: the same rows as `check`, then a line per rule and the summary. */
export function formatAuditTable(report: AuditReport): string {
  const parts: string[] = [];
  if (report.objects.length > 0) parts.push(renderTable(HEADER, report.objects.map(findingRows)));
  parts.push(ruleSummary(report.objects));
  parts.push(auditSummary(report) + (report.reports ? `\n${reportsLine(report.reports)}` : ''));
  return `${parts.join('\n\n')}\n`;
}

/** `sts-guard audit --output json`: `check`'s shape, with Services among the objects. */
export function formatAuditJson(report: AuditReport): string {
  const statefulSets = report.objects.filter((o) => o.kind === 'StatefulSet');
  const denied = statefulSets.filter((c) => !c.allowed).length;
  const document = {
    allowed: report.objects.every((o) => o.allowed),
    summary: {
      statefulSets: statefulSets.length,
      admitted: statefulSets.length - denied,
      denied,
      passedThrough: report.statefulSetsListed - statefulSets.length,
      services: report.servicesListed,
      servicesWithFindings: report.objects.length - statefulSets.length,
      servicesDenied: report.objects.filter((o) => o.kind === 'Service' && !o.allowed).length,
      rules: ruleCounts(report.objects),
    },
    objects: report.objects.map((c) => jsonObject(c, { showMutation: false })),
    ...(report.reports ? { reports: report.reports } : {}),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}
