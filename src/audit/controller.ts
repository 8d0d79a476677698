import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError } from '../cluster/client.js';
import type { ConfigMapDirectory, ExceptionSource, ReviewContext } from '../pipeline/ports.js';
import type { PolicySettings } from '../policy/index.js';
import {
  type AuditedObject,
  auditService,
  auditStatefulSet,
  beingDeleted,
  heldDirectories,
} from './evaluate.js';
import type { ClusterCaches, ObjectChange } from './informers.js';
import type { LeaderElection } from './lease.js';
import type { AuditMetrics } from './metrics.js';
import { inParallel } from './parallel.js';
import {
  apiVersionOf,
  buildReport,
  type ObjectReport,
  type PolicyReport,
  planChanged,
  planReports,
  type ReportApi,
  type ReportPlan,
  reportKey,
  resultsOf,
} from './report.js';
import { countResults, type ReportResult, timestampOf } from './results.js';
import type { ReportWriter } from './writer.js';

/**
 * The in-cluster audit: while this replica holds the Lease and its caches are complete, it scans
 * every StatefulSet and Service through the pipeline (on start, on leadership, on an exceptions
 * reload, on a report API appearing, and every AUDIT_INTERVAL_SECONDS), rescans what a change
 * affects (debounced), and brings the policy reports in line: one per object with results.
 */

export interface AuditSettings {
  passResults: boolean;
  maxReports: number;
  maxResultsPerReport: number;
  intervalMs: number;
  debounceMs: number;
  discoveryIntervalMs: number;
}

export interface AuditControllerOptions {
  settings: PolicySettings;
  audit: AuditSettings;
  caches: ClusterCaches;
  configMaps: ConfigMapDirectory;
  exceptions?: ExceptionSource | undefined;
  writer: ReportWriter;
  election: LeaderElection;
  metrics: AuditMetrics;
  log: Logger;
}

export interface AuditController {
  start(): void;
  /** A full scan soon (debounced): an exceptions reload, a test. */
  requestFullScan(reason: string): void;
  /** True once the caches are complete (readiness). */
  ready(): boolean;
  stop(): Promise<void>;
}

/** Objects evaluated at once: look-ups come from memory, but a ConfigMap is read live. */
const EVALUATION_CONCURRENCY = 16;
/**
 * After a failed LIST or write, a full scan again: 1 s, then twice as long each time, at most 30 s
 * (a report CRD just installed answers 429 "storage is (re)initializing" for a moment).
 */
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

const objectKey = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

export function createAuditController(o: AuditControllerOptions): AuditController {
  const { caches, writer, election, metrics, log, audit } = o;
  let api: ReportApi | undefined;
  let served: ReportApi[] = [];
  /** undefined until the first discovery answered; then the API in use, or 'none'. */
  let apiState: string | undefined;
  /** The reports sts-guard holds for `api`, by `namespace/name`; undefined until listed. */
  let stored: Map<string, PolicyReport> | undefined;
  /** Each object's report key, to forget it when the object goes. */
  const reportOf = new Map<string, string>();
  /** Each object's results (pass included), for the findings gauge. */
  const resultsByObject = new Map<string, ReportResult[]>();
  let fullPending = true;
  const dirty = new Map<string, ObjectChange>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const intervals: NodeJS.Timeout[] = [];
  let stopped = false;
  /** Scans in a row that failed, for the backoff. */
  let failures = 0;

  /** A full scan after the backoff; the index is re-listed then. */
  function retryLater() {
    failures++;
    fullPending = true;
    stored = undefined;
    clearTimeout(timer);
    timer = undefined;
    schedule(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (failures - 1)));
  }

  const reviewContext = (): ReviewContext => ({
    settings: o.settings,
    ...heldDirectories(caches.statefulSets, caches.services),
    configMaps: o.configMaps,
    exceptions: o.exceptions,
  });

  const now = () => timestampOf(Date.now());
  const reportOptions = () => ({
    passResults: audit.passResults,
    maxResults: audit.maxResultsPerReport,
    now: now(),
  });

  function schedule(delayMs = audit.debounceMs) {
    if (timer || stopped) return;
    timer = setTimeout(flush, delayMs);
    timer.unref();
  }

  function flush() {
    timer = undefined;
    if (running) return; // run() schedules again when it ends
    running = run()
      .then(() => {
        // A scan whose writes failed asked for a retry (fullPending): the backoff goes on.
        if (!fullPending) failures = 0;
      })
      .catch((error: unknown) => {
        const api = typeof (error as { code?: unknown } | null)?.code === 'number';
        const reason = api
          ? describeApiError(error, 10_000, 'list reports', "the audit ServiceAccount's")
          : undefined;
        log.error(api ? { reason } : { err: error }, 'audit scan failed; a full scan follows');
        // A LIST of reports that fails may mean the CRD went away: ask again which API is served.
        void discover();
        retryLater();
      })
      .finally(() => {
        running = undefined;
        // A standby, or caches still filling, waits for the Lease or the sync to ask again.
        if ((fullPending || dirty.size > 0) && election.isLeader() && caches.synced()) schedule();
      });
  }

  async function run() {
    if (!election.isLeader() || !caches.synced()) return;
    if (fullPending) {
      fullPending = false;
      dirty.clear();
      await fullScan();
    } else if (dirty.size > 0) {
      const changes = [...dirty.values()];
      dirty.clear();
      await changedScan(changes);
    }
  }

  async function evaluate(statefulSets: readonly V1StatefulSet[], services: readonly V1Service[]) {
    const ctx = reviewContext();
    const audited: AuditedObject[] = [];
    const live = (list: readonly (V1StatefulSet | V1Service)[]) => list.filter((x) => !beingDeleted(x));
    await inParallel(live(statefulSets), EVALUATION_CONCURRENCY, async (sts) => {
      audited.push(await auditStatefulSet(sts as V1StatefulSet, ctx));
    });
    await inParallel(live(services), EVALUATION_CONCURRENCY, async (svc) => {
      audited.push(await auditService(svc as V1Service, ctx));
    });
    metrics.scanned('StatefulSet', audited.filter((a) => a.ref.kind === 'StatefulSet').length);
    metrics.scanned('Service', audited.filter((a) => a.ref.kind === 'Service').length);
    for (const a of audited) {
      const key = objectKey(a.ref.kind, a.ref.namespace, a.ref.name);
      const results = resultsOf(a, { passResults: true, now: now() });
      if (results.length > 0) resultsByObject.set(key, results);
      else resultsByObject.delete(key);
    }
    return audited;
  }

  /** Each audited object's report key and desired report, counting what the per-report cap leaves out. */
  function desiredReports(target: ReportApi, audited: readonly AuditedObject[]): ObjectReport[] {
    const options = reportOptions();
    const reports: ObjectReport[] = [];
    let truncated = 0;
    for (const a of audited) {
      if (!a.ref.uid) continue;
      const key = `${a.ref.namespace}/${a.ref.uid}`;
      reportOf.set(objectKey(a.ref.kind, a.ref.namespace, a.ref.name), key);
      const built = buildReport(target, a, options);
      truncated += built?.truncated ?? 0;
      reports.push({ key, desired: built?.report });
    }
    if (truncated > 0) metrics.capHit('results', truncated);
    return reports;
  }

  async function write(target: ReportApi, plan: ReportPlan, scope: string) {
    if (plan.capped > 0) {
      metrics.capHit('reports', plan.capped);
      log.warn(
        { capped: plan.capped, maxReports: audit.maxReports },
        'AUDIT_MAX_REPORTS reached: objects with the mildest findings get no report',
      );
    }
    const result = await writer.apply(target, plan, () => election.isLeader());
    metrics.written('create', result.created);
    metrics.written('update', result.updated);
    metrics.written('delete', result.deleted);
    if (result.failed > 0) metrics.writeFailed(result.failed);
    if (result.failed > 0) {
      // What is stored is no longer known for sure: list it again at a full scan.
      retryLater();
    } else if (result.skipped > 0) {
      // The Lease was lost: the next holder lists what is stored.
      stored = undefined;
    } else if (stored && target === api) {
      // The index is of the API in use; reports of another (left behind by a switch) share its keys.
      for (const r of [...plan.create, ...plan.update]) {
        const key = reportKey(r);
        stored.set(key, {
          ...r,
          metadata: { ...r.metadata, resourceVersion: result.versions.get(key) ?? '' },
        });
      }
      for (const r of plan.delete) stored.delete(reportKey(r));
      metrics.setReports(stored.size);
    }
    if (result.apiGone) void discover();
    const { versions: _, ...counts } = result;
    log.info(
      { scope, api: apiVersionOf(target), ...counts, unchanged: plan.unchanged, capped: plan.capped },
      'audit reports written',
    );
  }

  async function fullScan() {
    const started = performance.now();
    const audited = await evaluate(caches.statefulSets.all(), caches.services.all());
    // Objects gone since the last full scan: forget them (their reports went with them).
    const present = new Set(audited.map((a) => objectKey(a.ref.kind, a.ref.namespace, a.ref.name)));
    for (const key of [...resultsByObject.keys()]) if (!present.has(key)) resultsByObject.delete(key);
    for (const key of [...reportOf.keys()]) if (!present.has(key)) reportOf.delete(key);
    metrics.setFindings(countResults(resultsByObject.values()));
    const target = api;
    if (target && election.isLeader()) {
      const existing = await writer.list(target);
      stored = new Map(existing.map((r) => [reportKey(r), r]));
      const desired = desiredReports(target, audited).flatMap((r) => (r.desired ? [r.desired] : []));
      const plan = planReports(desired, existing, audit.maxReports);
      await write(target, plan, 'full');
      // Reports this audit wrote with an API it has since moved away from (OpenReports installed
      // beside PolicyReports): deleted, so no stale report stays behind.
      for (const other of served.filter((s) => s !== target)) {
        const left = await writer.list(other);
        if (left.length > 0) await write(other, planReports([], left, 0), 'other report API');
      }
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.scanDuration('full', seconds);
    metrics.fullScanCompleted(Date.now() / 1000);
    log.info(
      { objects: audited.length, withResults: resultsByObject.size, seconds: Number(seconds.toFixed(3)) },
      'audit full scan finished',
    );
  }

  /** The changed objects and those they affect: a Service's verdict depends on the StatefulSets it selects, and back. */
  function affected(changes: readonly ObjectChange[]) {
    const keys = new Map<string, ObjectChange>();
    const add = (c: ObjectChange) => keys.set(objectKey(c.kind, c.namespace, c.name), c);
    for (const change of changes) {
      add(change);
      const others =
        change.kind === 'StatefulSet'
          ? caches.services.list(change.namespace)
          : caches.statefulSets.list(change.namespace);
      const kind = change.kind === 'StatefulSet' ? 'Service' : 'StatefulSet';
      for (const other of others)
        add({ kind, namespace: change.namespace, name: other.metadata?.name ?? '' });
    }
    return [...keys.entries()];
  }

  async function changedScan(changes: readonly ObjectChange[]) {
    const started = performance.now();
    const statefulSets: V1StatefulSet[] = [];
    const services: V1Service[] = [];
    for (const [key, c] of affected(changes)) {
      const object =
        c.kind === 'StatefulSet'
          ? caches.statefulSets.get(c.namespace, c.name)
          : caches.services.get(c.namespace, c.name);
      if (!object || beingDeleted(object)) {
        // Gone: its report goes with it (owner reference); only our bookkeeping forgets it.
        resultsByObject.delete(key);
        const report = reportOf.get(key);
        if (report) stored?.delete(report);
        reportOf.delete(key);
        continue;
      }
      if (c.kind === 'StatefulSet') statefulSets.push(object as V1StatefulSet);
      else services.push(object as V1Service);
    }
    const audited = await evaluate(statefulSets, services);
    metrics.setFindings(countResults(resultsByObject.values()));
    const target = api;
    if (target && stored && election.isLeader()) {
      const plan = planChanged(desiredReports(target, audited), stored, audit.maxReports);
      if (plan.create.length + plan.update.length + plan.delete.length + plan.capped > 0) {
        await write(target, plan, 'changed');
      }
    }
    metrics.scanDuration('changed', (performance.now() - started) / 1000);
  }

  async function discover() {
    const found = await writer.discover();
    if (found.outcome === 'failed') {
      log.warn({ reason: found.reason }, 'report API discovery failed; the audit keeps what it found before');
      return;
    }
    const next = found.outcome === 'found' ? apiVersionOf(found.api) : 'none';
    served = found.outcome === 'found' ? found.served : [];
    if (next === apiState) return;
    const first = apiState === undefined;
    apiState = next;
    metrics.setReportApi(next);
    stored = undefined;
    if (found.outcome === 'found') {
      api = found.api;
      log.info({ api: next, kind: found.api.kind }, 'the audit writes policy reports');
      if (!first) requestFullScan(`report API ${next} appeared`);
    } else {
      api = undefined;
      // Said once per change, not at every discovery: the audit runs on, with metrics only.
      log.warn(
        'neither openreports.io/v1alpha1 Report nor wgpolicyk8s.io/v1alpha2 PolicyReport is served: the audit writes no reports, only metrics (install one of the CRDs; docs/operations.md)',
      );
    }
  }

  function requestFullScan(reason: string) {
    log.debug({ reason }, 'audit full scan requested');
    fullPending = true;
    schedule();
  }

  return {
    start() {
      caches.start(
        (change) => {
          if (!election.isLeader()) return; // the full scan on taking the Lease covers it
          dirty.set(objectKey(change.kind, change.namespace, change.name), change);
          schedule();
        },
        () => requestFullScan('caches synced'),
      );
      election.start((leader) => {
        metrics.setLeader(leader);
        if (leader) requestFullScan('Lease acquired');
        else {
          // Only the holder's view counts: a standby exports no findings.
          stored = undefined;
          dirty.clear();
          resultsByObject.clear();
          metrics.setFindings(new Map());
        }
      });
      void discover().then(() => requestFullScan('report API discovered'));
      intervals.push(setInterval(() => void discover(), audit.discoveryIntervalMs));
      intervals.push(setInterval(() => requestFullScan('interval'), audit.intervalMs));
      for (const i of intervals) i.unref();
    },
    requestFullScan,
    ready: () => caches.synced(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      for (const i of intervals) clearInterval(i);
      await election.stop();
      await running;
      await caches.stop();
    },
  };
}
