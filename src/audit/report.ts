import { isDeepStrictEqual } from 'node:util';
import type { AuditedObject, AuditedRef } from './evaluate.js';
import {
  byRank,
  findingResult,
  passResults,
  REPORT_SOURCE,
  RESULT_RANK,
  type ReportResult,
  type ResultStatus,
  type ResultTimestamp,
} from './results.js';

/**
 * One policy report per audited object with results: built, compared and planned here, written by
 * the edge (writer.ts). Pure: no I/O, the time is passed in.
 */

/** A report API sts-guard can write, in the order it prefers them (found by discovery). */
export interface ReportApi {
  group: 'openreports.io' | 'wgpolicyk8s.io';
  version: 'v1alpha1' | 'v1alpha2';
  kind: 'Report' | 'PolicyReport';
  plural: 'reports' | 'policyreports';
  /** OpenReports also takes `source` on the report; PolicyReport v1alpha2 would prune it. */
  reportLevelSource: boolean;
}

export const OPENREPORTS: ReportApi = {
  group: 'openreports.io',
  version: 'v1alpha1',
  kind: 'Report',
  plural: 'reports',
  reportLevelSource: true,
};

export const WGPOLICY: ReportApi = {
  group: 'wgpolicyk8s.io',
  version: 'v1alpha2',
  kind: 'PolicyReport',
  plural: 'policyreports',
  reportLevelSource: false,
};

/** OpenReports first (Kubewarden's default, Kyverno's behind a flag), then the older wgpolicy API. */
export const REPORT_APIS: readonly ReportApi[] = [OPENREPORTS, WGPOLICY];

export const apiVersionOf = (api: ReportApi) => `${api.group}/${api.version}`;

/** On every report sts-guard writes: what it lists, owns and may delete. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'sts-guard';
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
/** Set when a report holds fewer results than were found (AUDIT_MAX_RESULTS_PER_REPORT). */
export const TRUNCATED_ANNOTATION = 'sts-guard.io/results-truncated';

export type Summary = Record<ResultStatus, number>;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface PolicyReport {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences: OwnerReference[];
    resourceVersion?: string;
  };
  /** OpenReports only. */
  source?: string;
  scope: Required<AuditedRef>;
  summary: Summary;
  results: ReportResult[];
}

export interface ReportOptions {
  /** `pass` results for the rules evaluated without a finding (AUDIT_PASS_RESULTS). */
  passResults: boolean;
  /** At most this many results per report, worst first (AUDIT_MAX_RESULTS_PER_REPORT). */
  maxResults: number;
  /** When the results were found. */
  now: ResultTimestamp;
}

/** The results of one audited object, worst first (stable within a status). */
export function resultsOf(object: AuditedObject, options: Pick<ReportOptions, 'passResults' | 'now'>) {
  const { decision, engine, evaluated } = object;
  const found = decision.findings.map((f) => findingResult(f, options.now, engine));
  const passed = options.passResults ? passResults(evaluated, decision.findings, options.now, engine) : [];
  return [...found, ...passed].sort(byRank);
}

export function summaryOf(results: readonly ReportResult[]): Summary {
  const summary: Summary = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
  for (const r of results) summary[r.result]++;
  return summary;
}

/** The report's name: the object's UID, unique, stable over renames of nothing, and what Kyverno uses. */
export const reportName = (ref: AuditedRef) => ref.uid ?? '';

export interface BuiltReport {
  report: PolicyReport;
  /** Results left out by the cap. */
  truncated: number;
}

/**
 * The report for one audited object, or undefined when it has no results (no report: what is
 * compliant costs etcd nothing) or was never stored (no UID to own it by).
 */
export function buildReport(
  api: ReportApi,
  object: AuditedObject,
  options: ReportOptions,
): BuiltReport | undefined {
  const { ref } = object;
  if (!ref.uid) return undefined;
  const all = resultsOf(object, options);
  if (all.length === 0) return undefined;
  const results = all.slice(0, Math.max(1, options.maxResults));
  const truncated = all.length - results.length;
  const scope = { ...ref, uid: ref.uid };
  return {
    truncated,
    report: {
      apiVersion: apiVersionOf(api),
      kind: api.kind,
      metadata: {
        name: reportName(ref),
        namespace: ref.namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
        ...(truncated > 0 ? { annotations: { [TRUNCATED_ANNOTATION]: String(truncated) } } : {}),
        // The garbage collector deletes the report with its object; no finalizer, no write by us.
        ownerReferences: [{ apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, uid: ref.uid }],
      },
      ...(api.reportLevelSource ? { source: REPORT_SOURCE } : {}),
      scope,
      summary: summaryOf(results),
      results,
    },
  };
}

/** The worst result of a report (fail before error, warn, skip, pass). */
export const worstOf = (report: Pick<PolicyReport, 'results'>): ResultStatus =>
  report.results.reduce<ResultStatus>(
    (worst, r) => (RESULT_RANK[r.result] < RESULT_RANK[worst] ? r.result : worst),
    'pass',
  );

const resultKey = (r: ReportResult) => `${r.policy}\n${r.rule}\n${r.result}\n${r.message}`;

/**
 * A result found before keeps the time it was first found (`timestamp` means "when the result was
 * found"), so an unchanged finding never rewrites its report.
 */
export function keepTimestamps(desired: PolicyReport, stored: PolicyReport | undefined): PolicyReport {
  if (!stored) return desired;
  const before = new Map(stored.results.map((r) => [resultKey(r), r.timestamp]));
  return {
    ...desired,
    results: desired.results.map((r) => {
      const timestamp = before.get(resultKey(r));
      return timestamp ? { ...r, timestamp } : r;
    }),
  };
}

/** What a write would change: the content sts-guard owns, not the server's metadata. */
const owned = (r: PolicyReport) => ({
  labels: r.metadata.labels?.[MANAGED_BY_LABEL],
  annotations: r.metadata.annotations?.[TRUNCATED_ANNOTATION],
  ownerReferences: (r.metadata.ownerReferences ?? []).map(({ apiVersion, kind, name, uid }) => ({
    apiVersion,
    kind,
    name,
    uid,
  })),
  source: r.source,
  scope: r.scope,
  summary: r.summary,
  results: r.results,
});

export const sameContent = (a: PolicyReport, b: PolicyReport) => isDeepStrictEqual(owned(a), owned(b));

export const reportKey = (report: { metadata: { namespace: string; name: string } }) =>
  `${report.metadata.namespace}/${report.metadata.name}`;

/** What to do to bring the stored reports to the desired ones. */
export interface ReportPlan {
  create: PolicyReport[];
  /** With the stored report's resourceVersion. */
  update: PolicyReport[];
  delete: PolicyReport[];
  /** Reports left out by AUDIT_MAX_REPORTS. */
  capped: number;
  /** Desired reports already stored as they are. */
  unchanged: number;
}

/**
 * Reconciles `stored` (every report sts-guard wrote in the scope) with `desired`: at most
 * `maxReports` reports, the worst first, then by namespace and name (deterministic); everything
 * else stored is deleted. Unchanged reports are not written.
 */
export function planReports(
  desired: readonly PolicyReport[],
  stored: readonly PolicyReport[],
  maxReports: number,
): ReportPlan {
  const ranked = [...desired].sort(
    (a, b) =>
      RESULT_RANK[worstOf(a)] - RESULT_RANK[worstOf(b)] ||
      a.metadata.namespace.localeCompare(b.metadata.namespace) ||
      a.scope.kind.localeCompare(b.scope.kind) ||
      a.scope.name.localeCompare(b.scope.name),
  );
  const kept = ranked.slice(0, Math.max(0, maxReports));
  const byKey = new Map(stored.map((r) => [reportKey(r), r]));
  const plan: ReportPlan = {
    create: [],
    update: [],
    delete: [],
    capped: ranked.length - kept.length,
    unchanged: 0,
  };
  const keptKeys = new Set<string>();
  for (const report of kept) {
    const key = reportKey(report);
    keptKeys.add(key);
    const before = byKey.get(key);
    const next = keepTimestamps(report, before);
    if (!before) plan.create.push(next);
    else if (sameContent(before, next)) plan.unchanged++;
    else
      plan.update.push({
        ...next,
        metadata: { ...next.metadata, resourceVersion: before.metadata.resourceVersion ?? '' },
      });
  }
  for (const report of stored) if (!keptKeys.has(reportKey(report))) plan.delete.push(report);
  return plan;
}

/** One audited object's report key (`namespace/uid`) and the report it should have, if any. */
export interface ObjectReport {
  key: string;
  desired: PolicyReport | undefined;
}

/**
 * The plan for a few objects that changed, against what is stored: a report created only while
 * fewer than `maxReports` are held, updated when its content changed, deleted when the object no
 * longer has results.
 */
export function planChanged(
  objects: readonly ObjectReport[],
  stored: ReadonlyMap<string, PolicyReport>,
  maxReports: number,
): ReportPlan {
  const plan: ReportPlan = { create: [], update: [], delete: [], capped: 0, unchanged: 0 };
  for (const { key, desired } of objects) {
    const before = stored.get(key);
    if (!desired) {
      if (before) plan.delete.push(before);
      continue;
    }
    const room = before !== undefined || stored.size + plan.create.length < maxReports;
    const one = planReports([desired], before ? [before] : [], room ? 1 : 0);
    plan.create.push(...one.create);
    plan.update.push(...one.update);
    plan.capped += one.capped;
    plan.unchanged += one.unchanged;
  }
  return plan;
}
