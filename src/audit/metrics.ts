import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { WatchedKind } from './informers.js';
import type { ResultStatus } from './results.js';

/**
 * The audit's Prometheus metrics (`sts_guard_audit_*`), in a registry of its own. Findings are a
 * gauge of what the leader's last scans found, not a counter: a finding fixed is a finding gone.
 */

export type CapName = 'reports' | 'results';
export type ScanScope = 'full' | 'changed';

export interface AuditMetrics {
  registry: Registry;
  scanned(kind: WatchedKind, count: number): void;
  /** Replaces the findings gauge with these counts (rule → result → count). */
  setFindings(counts: ReadonlyMap<string, ReadonlyMap<ResultStatus, number>>): void;
  scanDuration(scope: ScanScope, seconds: number): void;
  fullScanCompleted(epochSeconds: number): void;
  written(operation: 'create' | 'update' | 'delete', count: number): void;
  writeFailed(count: number): void;
  capHit(cap: CapName, count: number): void;
  setReports(count: number): void;
  setLeader(leader: boolean): void;
  /** The report API in use: `openreports.io/v1alpha1`, `wgpolicyk8s.io/v1alpha2` or `none`. */
  setReportApi(api: string): void;
}

const RESULTS: readonly ResultStatus[] = ['fail', 'error', 'warn', 'skip', 'pass'];

export function createAuditMetrics(): AuditMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const scanned = new Counter({
    name: 'sts_guard_audit_resources_scanned_total',
    help: 'StatefulSets and Services the audit evaluated through the pipeline, full scans and rescans of changed objects alike.',
    labelNames: ['kind'] as const,
    registers,
  });
  const findings = new Gauge({
    name: 'sts_guard_audit_findings',
    help: 'Results of the last scans, by rule (check id) and result (fail, error, warn, skip, pass); only the Lease holder scans, so sum over replicas or filter on sts_guard_audit_leader.',
    labelNames: ['rule', 'result'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'sts_guard_audit_scan_duration_seconds',
    help: 'Time of one scan: evaluation and report writes. scope=full scans every object, scope=changed the objects a change affects.',
    labelNames: ['scope'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers,
  });
  const lastFull = new Gauge({
    name: 'sts_guard_audit_last_full_scan_timestamp_seconds',
    help: 'When the last full scan finished (Unix time); 0 before the first.',
    registers,
  });
  const written = new Counter({
    name: 'sts_guard_audit_reports_written_total',
    help: 'Policy reports created or updated by this replica.',
    labelNames: ['operation'] as const,
    registers,
  });
  const deleted = new Counter({
    name: 'sts_guard_audit_reports_deleted_total',
    help: 'Policy reports this replica deleted (the object became compliant, or a cap left it out). Reports of deleted objects are removed by the garbage collector, not counted here.',
    registers,
  });
  const failed = new Counter({
    name: 'sts_guard_audit_report_write_errors_total',
    help: 'Report writes that failed (logged with the reason); the next scan tries again.',
    registers,
  });
  const caps = new Counter({
    name: 'sts_guard_audit_cap_hits_total',
    help: 'Reports left out by AUDIT_MAX_REPORTS (cap=reports) and results left out of a report by AUDIT_MAX_RESULTS_PER_REPORT (cap=results).',
    labelNames: ['cap'] as const,
    registers,
  });
  const reports = new Gauge({
    name: 'sts_guard_audit_reports',
    help: 'Policy reports sts-guard holds in the cluster, as this replica last wrote or listed them.',
    registers,
  });
  const leader = new Gauge({
    name: 'sts_guard_audit_leader',
    help: '1 while this replica holds the audit Lease and writes reports, else 0.',
    registers,
  });
  const reportApi = new Gauge({
    name: 'sts_guard_audit_report_api',
    help: 'The report API the audit writes (1 on the one in use): openreports.io/v1alpha1, wgpolicyk8s.io/v1alpha2, or none (metrics only).',
    labelNames: ['api'] as const,
    registers,
  });
  // Present from the start, so rate() and absent() alerts work before the first event.
  for (const kind of ['StatefulSet', 'Service']) scanned.inc({ kind }, 0);
  for (const operation of ['create', 'update']) written.inc({ operation }, 0);
  for (const cap of ['reports', 'results']) caps.inc({ cap }, 0);
  deleted.inc(0);
  failed.inc(0);
  leader.set(0);
  lastFull.set(0);

  return {
    registry,
    scanned: (kind, count) => scanned.inc({ kind }, count),
    setFindings(counts) {
      findings.reset();
      for (const [rule, byResult] of counts) {
        for (const result of RESULTS) findings.set({ rule, result }, byResult.get(result) ?? 0);
      }
    },
    scanDuration: (scope, seconds) => duration.observe({ scope }, seconds),
    fullScanCompleted: (epochSeconds) => lastFull.set(epochSeconds),
    written(operation, count) {
      if (operation === 'delete') deleted.inc(count);
      else written.inc({ operation }, count);
    },
    writeFailed: (count) => failed.inc(count),
    capHit: (cap, count) => caps.inc({ cap }, count),
    setReports: (count) => reports.set(count),
    setLeader: (value) => leader.set(value ? 1 : 0),
    setReportApi(api) {
      reportApi.reset();
      reportApi.set({ api }, 1);
    },
  };
}
