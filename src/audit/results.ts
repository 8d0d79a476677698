import type { CheckId, Finding } from '../policy/index.js';

/**
 * Findings as policy-report results: the one mapping from what the pipeline found to what
 * `openreports.io/v1alpha1` Report and `wgpolicyk8s.io/v1alpha2` PolicyReport carry (their result
 * shapes are the same). Pure: the time is passed in.
 */

export type ResultStatus = 'pass' | 'fail' | 'warn' | 'error' | 'skip';
/** The severities both CRDs accept (`critical` and `info` are valid in v1alpha2 and OpenReports). */
export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';

/** `source` of every result and report: policy reporters group by it. */
export const REPORT_SOURCE = 'sts-guard';
/** `policy` of every result: one policy, whose rules are the check ids. */
export const REPORT_POLICY = 'sts-guard';

/** A protobuf Timestamp, as both CRDs declare `timestamp`. */
export interface ResultTimestamp {
  seconds: number;
  nanos: number;
}

export interface ReportResult {
  source: typeof REPORT_SOURCE;
  policy: typeof REPORT_POLICY;
  rule: CheckId;
  result: ResultStatus;
  severity: Severity;
  category: string;
  message: string;
  properties: Record<string, string>;
  timestamp: ResultTimestamp;
}

interface CheckReporting {
  severity: Severity;
  category: string;
  /** The pass message, for a rule evaluated without a finding (`AUDIT_PASS_RESULTS=on`). */
  passed: string;
}

/**
 * Severity and category per check. A Record over every check id: a new rule or advisory does not
 * compile until it is given both here.
 */
export const CHECK_REPORTING: Record<CheckId, CheckReporting> = {
  // Each member keeps its own data: writes are lost or diverge.
  'replica-set': {
    severity: 'high',
    category: 'Replication',
    passed: 'the database server runs as a replica-set member',
  },
  // No stable member DNS names: the set cannot form or re-form.
  'headless-service': {
    severity: 'high',
    category: 'Replication',
    passed: 'spec.serviceName names a headless Service',
  },
  'service-protection': {
    severity: 'high',
    category: 'Replication',
    passed: 'the headless Service of the replica set is in place',
  },
  // Clients reach SECONDARYs: failed writes, stale reads; the data itself is safe.
  'client-routing': {
    severity: 'medium',
    category: 'Client Routing',
    passed: 'no Service with a cluster IP load-balances clients over the members',
  },
  'member-count': { severity: 'low', category: 'Availability', passed: 'an odd number of members' },
  'volume-retention': {
    severity: 'medium',
    category: 'Data Durability',
    passed: 'the volume claims are retained',
  },
  'publish-not-ready-addresses': {
    severity: 'medium',
    category: 'Replication',
    passed: 'the headless Service publishes not-ready addresses',
  },
};

/**
 * `deny` → fail, `warn` → warn, `waived` → skip (the exception and its reason in properties);
 * a finding a failed look-up caused (`unverified`) → error, whatever the webhook would do with it.
 */
export function resultStatus(finding: Finding): ResultStatus {
  if (finding.unverified) return 'error';
  switch (finding.outcome) {
    case 'deny':
      return 'fail';
    case 'warn':
      return 'warn';
    case 'waived':
      return 'skip';
  }
}

/** Properties are string → string in both CRDs. */
function propertiesOf(finding: Finding, engine: string | undefined): Record<string, string> {
  return {
    // What the webhook would answer to a CREATE of the object as it is stored now.
    admission: finding.outcome,
    ...(engine ? { engine } : {}),
    ...(finding.fix ? { fix: finding.fix } : {}),
    ...(finding.exception
      ? { exception: finding.exception.name, exceptionReason: finding.exception.reason }
      : {}),
    ...(finding.unverified ? { unverified: 'true' } : {}),
  };
}

export function findingResult(
  finding: Finding,
  timestamp: ResultTimestamp,
  engine?: string | undefined,
): ReportResult {
  const reporting = CHECK_REPORTING[finding.check];
  return {
    source: REPORT_SOURCE,
    policy: REPORT_POLICY,
    rule: finding.check,
    result: resultStatus(finding),
    severity: reporting.severity,
    category: reporting.category,
    message: finding.problem,
    properties: propertiesOf(finding, engine),
    timestamp,
  };
}

/** One pass per rule evaluated without a finding of its own. */
export function passResults(
  evaluated: readonly CheckId[],
  findings: readonly Finding[],
  timestamp: ResultTimestamp,
  engine?: string | undefined,
): ReportResult[] {
  const found = new Set(findings.map((f) => f.check));
  return evaluated
    .filter((check) => !found.has(check))
    .map((check): ReportResult => {
      const reporting = CHECK_REPORTING[check];
      const properties: Record<string, string> = engine ? { engine } : {};
      return {
        source: REPORT_SOURCE,
        policy: REPORT_POLICY,
        rule: check,
        result: 'pass',
        severity: reporting.severity,
        category: reporting.category,
        message: reporting.passed,
        properties,
        timestamp,
      };
    });
}

/** Worst first: what a cap keeps, and the order results are written in. */
export const RESULT_RANK: Record<ResultStatus, number> = { fail: 0, error: 1, warn: 2, skip: 3, pass: 4 };

export const byRank = (a: { result: ResultStatus }, b: { result: ResultStatus }) =>
  RESULT_RANK[a.result] - RESULT_RANK[b.result];

/** A Date as a protobuf Timestamp. */
export function timestampOf(epochMs: number): ResultTimestamp {
  const seconds = Math.floor(epochMs / 1000);
  return { seconds, nanos: Math.round((epochMs - seconds * 1000) * 1e6) };
}

/** Results counted by rule and result, for the findings gauge. */
export function countResults(
  results: Iterable<readonly ReportResult[]>,
): Map<string, Map<ResultStatus, number>> {
  const counts = new Map<string, Map<ResultStatus, number>>();
  for (const list of results) {
    for (const r of list) {
      let byResult = counts.get(r.rule);
      if (!byResult) {
        byResult = new Map();
        counts.set(r.rule, byResult);
      }
      byResult.set(r.result, (byResult.get(r.result) ?? 0) + 1);
    }
  }
  return counts;
}
