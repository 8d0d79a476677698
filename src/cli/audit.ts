import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadAuditClient } from '../audit/client.js';
import {
  type AuditedObject,
  auditService,
  auditStatefulSet,
  beingDeleted,
  heldDirectories,
  indexByNamespace,
} from '../audit/evaluate.js';
import { listAllPages } from '../audit/pages.js';
import { apiVersionOf, buildReport, type PolicyReport, planReports } from '../audit/report.js';
import { timestampOf } from '../audit/results.js';
import { createReportWriter } from '../audit/writer.js';
import { describeApiError, lookupOptions } from '../cluster/client.js';
import { createKubernetesConfigMapDirectory } from '../cluster/configmaps.js';
import type { Config } from '../config.js';
import type { ReviewContext } from '../pipeline/ports.js';
import type { ExceptionList } from '../policy/index.js';
import { InputError } from './errors.js';
import type { AuditReport, ObjectCheck } from './format.js';

/**
 * `sts-guard audit`: what the in-cluster audit reports, from the command line. Lists the cluster's
 * StatefulSets and Services page by page, judges each through the pipeline exactly as the
 * in-cluster audit does (src/audit/evaluate.ts), and, with --write-reports, writes the same
 * policy reports.
 */

export interface AuditCommand {
  /** One namespace, or undefined for all. */
  namespace: string | undefined;
  output: 'table' | 'json';
  pageSize: number;
  writeReports: boolean;
  exceptions: ExceptionList | undefined;
}

/** Whose RBAC a refusal names: the CLI runs as whatever the kubeconfig says. */
const IDENTITY = "the kubeconfig identity's";

/** The cluster could not be read or written: exit code 2, like unreadable input. */
export class ClusterError extends InputError {}

/** Rows for the output: every database StatefulSet, and every Service with a finding. */
export function objectCheck(audited: AuditedObject): ObjectCheck {
  const { ref, decision } = audited;
  return {
    source: `uid ${ref.uid ?? '(none)'}`,
    kind: ref.kind,
    namespace: ref.namespace,
    name: ref.name,
    database: audited.engine,
    allowed: decision.allowed,
    message: decision.message,
    violations: decision.violations,
    findings: decision.findings,
    warnings: decision.warnings,
    patch: [],
    injected: [],
    exemptions: decision.exemptions ?? [],
    steppedAside: audited.steppedAside,
  };
}

const shown = (a: AuditedObject) =>
  a.ref.kind === 'StatefulSet' ? a.engine !== undefined : a.decision.findings.length > 0;

const ordered = (a: AuditedObject, b: AuditedObject) =>
  a.ref.namespace.localeCompare(b.ref.namespace) ||
  b.ref.kind.localeCompare(a.ref.kind) ||
  a.ref.name.localeCompare(b.ref.name);

export async function runAudit(command: AuditCommand, config: Config): Promise<AuditReport> {
  // Logs go to stderr so that stdout stays the report (and valid JSON with --output json).
  const log = pino({ level: 'warn', base: { service: 'sts-guard-cli' } }, pino.destination(2));
  let client: Awaited<ReturnType<typeof loadAuditClient>>;
  try {
    client = await loadAuditClient();
  } catch (error) {
    throw new ClusterError(`cannot audit: ${(error as Error).message}`);
  }
  const { lib, kubeConfig } = client;
  const apps = kubeConfig.makeApiClient(lib.AppsV1Api);
  const core = kubeConfig.makeApiClient(lib.CoreV1Api);
  const timeoutMs = Math.max(config.lookup.timeoutMs, 30_000);
  const namespace = command.namespace;

  const list = async <T>(what: string, page: Parameters<typeof listAllPages<T>>[0]): Promise<T[]> => {
    try {
      return (await listAllPages(page, command.pageSize)).items;
    } catch (error) {
      throw new ClusterError(
        `cannot list ${what}: ${describeApiError(error, timeoutMs, `list ${what}`, IDENTITY)}`,
      );
    }
  };
  const [statefulSets, services] = await Promise.all([
    list<V1StatefulSet>('statefulsets', ({ limit, continueToken }) =>
      namespace
        ? apps.listNamespacedStatefulSet(
            { namespace, limit, _continue: continueToken },
            lookupOptions(lib, timeoutMs),
          )
        : apps.listStatefulSetForAllNamespaces(
            { limit, _continue: continueToken },
            lookupOptions(lib, timeoutMs),
          ),
    ),
    list<V1Service>('services', ({ limit, continueToken }) =>
      namespace
        ? core.listNamespacedService(
            { namespace, limit, _continue: continueToken },
            lookupOptions(lib, timeoutMs),
          )
        : core.listServiceForAllNamespaces(
            { limit, _continue: continueToken },
            lookupOptions(lib, timeoutMs),
          ),
    ),
  ]);

  const exceptions = command.exceptions;
  const ctx: ReviewContext = {
    settings: config.policy,
    // Every look-up is within the object's own namespace, so what was listed answers them all.
    ...heldDirectories(indexByNamespace(statefulSets), indexByNamespace(services)),
    configMaps: createKubernetesConfigMapDirectory({ timeoutMs: config.lookup.timeoutMs, log, kubeConfig }),
    exceptions: exceptions ? { current: () => exceptions } : undefined,
  };
  const audited: AuditedObject[] = [];
  for (const sts of statefulSets) if (!beingDeleted(sts)) audited.push(await auditStatefulSet(sts, ctx));
  for (const svc of services) if (!beingDeleted(svc)) audited.push(await auditService(svc, ctx));

  const report: AuditReport = {
    objects: audited.filter(shown).sort(ordered).map(objectCheck),
    statefulSetsListed: statefulSets.length,
    servicesListed: services.length,
  };
  if (command.writeReports) {
    try {
      report.reports = await writeReports(client, audited, command, config, log);
    } catch (error) {
      // The findings stand; the report says what could not be written, and the exit code is 2.
      if (!(error instanceof ClusterError)) throw error;
      report.reportsError = error.message;
    }
  }
  return report;
}

/** The reports the in-cluster audit would hold for the audited scope, written now. */
async function writeReports(
  client: Awaited<ReturnType<typeof loadAuditClient>>,
  audited: readonly AuditedObject[],
  command: AuditCommand,
  config: Config,
  log: pino.Logger,
): Promise<NonNullable<AuditReport['reports']>> {
  const failures: string[] = [];
  const writer = createReportWriter({
    ...client,
    onError: (error, what) =>
      failures.push(
        `${what}: ${describeApiError(error, 10_000, 'create, update, delete reports', IDENTITY)}`,
      ),
  });
  const found = await writer.discover();
  if (found.outcome === 'failed') throw new ClusterError(`cannot discover the report APIs: ${found.reason}`);
  if (found.outcome === 'none') {
    throw new ClusterError(
      '--write-reports: the cluster serves neither openreports.io/v1alpha1 Report nor wgpolicyk8s.io/v1alpha2 PolicyReport (install one of the CRDs)',
    );
  }
  const { api } = found;
  const options = {
    passResults: config.audit.passResults,
    maxResults: config.audit.maxResultsPerReport,
    now: timestampOf(Date.now()),
  };
  const desired = audited.flatMap((a) => {
    const built = buildReport(api, a, options);
    return built ? [built.report] : [];
  });
  let stored: PolicyReport[];
  try {
    stored = await writer.list(api, command.namespace);
  } catch (error) {
    throw new ClusterError(
      `cannot list ${api.kind} objects: ${describeApiError(error, 10_000, `list ${api.plural}`, IDENTITY)}`,
    );
  }
  const plan = planReports(desired, stored, config.audit.maxReports);
  const result = await writer.apply(api, plan, () => true);
  if (failures.length > 0)
    throw new ClusterError(`some reports could not be written:\n${failures.join('\n')}`);
  log.debug({ api: apiVersionOf(api), ...result }, 'reports written');
  return {
    api: apiVersionOf(api),
    created: result.created,
    updated: result.updated,
    deleted: result.deleted,
    unchanged: plan.unchanged,
    capped: plan.capped,
  };
}
