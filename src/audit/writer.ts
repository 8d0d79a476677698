import type { ApisApi, CustomObjectsApi } from '@kubernetes/client-node';
import { lookupOptions } from '../cluster/client.js';
import type { AuditClient } from './client.js';
import { listAllPages, type Page } from './pages.js';
import { inParallel } from './parallel.js';
import {
  apiVersionOf,
  MANAGED_SELECTOR,
  type PolicyReport,
  REPORT_APIS,
  type ReportApi,
  type ReportPlan,
} from './report.js';

/**
 * The thin edge that writes policy reports: which report API the cluster serves (discovery),
 * the reports sts-guard wrote (LIST by label), and create / update / delete, a conflict retried
 * on the stored object. Everything it writes is decided in report.ts.
 */

/** One request's budget: a slow API server fails the write, which the next scan repeats. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Writes in flight at once: a first scan of thousands of findings never floods the API server. */
const WRITE_CONCURRENCY = 4;
const CONFLICT_ATTEMPTS = 4;

export type Discovery =
  /** `api` is the preferred one; `served` every report API the cluster serves. */
  | { outcome: 'found'; api: ReportApi; served: ReportApi[] }
  | { outcome: 'none' }
  | { outcome: 'failed'; reason: string };

export interface WriteResult {
  created: number;
  updated: number;
  deleted: number;
  /** Writes that failed (logged); the next scan tries again. */
  failed: number;
  /** Writes not made because `mayWrite` said no (the Lease was lost meanwhile). */
  skipped: number;
  /** Writes that met a conflict (the report changed since it was read) and were retried. */
  conflicts: number;
  /** The resourceVersion of each report written, by `namespace/name`. */
  versions: Map<string, string>;
  /** A write answered 404 for the kind itself: its CRD is gone, discovery must look again. */
  apiGone: boolean;
}

export interface ReportWriter {
  discover(): Promise<Discovery>;
  /** The reports sts-guard wrote with `api`, in one namespace or all. */
  list(api: ReportApi, namespace?: string): Promise<PolicyReport[]>;
  /** Carries out a plan, stopping before each write when `mayWrite` says no (leadership lost). */
  apply(api: ReportApi, plan: ReportPlan, mayWrite: () => boolean): Promise<WriteResult>;
}

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

export interface ReportWriterOptions extends AuditClient {
  /** Called for every write that failed, with what and why. */
  onError(error: unknown, what: string): void;
}

export function createReportWriter({ lib, kubeConfig, onError }: ReportWriterOptions): ReportWriter {
  const custom: CustomObjectsApi = kubeConfig.makeApiClient(lib.CustomObjectsApi);
  const apis: ApisApi = kubeConfig.makeApiClient(lib.ApisApi);
  const options = () => lookupOptions(lib, REQUEST_TIMEOUT_MS);
  const target = (api: ReportApi, namespace: string) => ({
    group: api.group,
    version: api.version,
    plural: api.plural,
    namespace,
  });

  /** The stored report's resourceVersion (custom resources take no update without one). */
  async function storedVersion(api: ReportApi, report: PolicyReport): Promise<string> {
    const stored = (await custom.getNamespacedCustomObject(
      { ...target(api, report.metadata.namespace), name: report.metadata.name },
      options(),
    )) as PolicyReport;
    return stored.metadata.resourceVersion ?? '';
  }

  /** Replaces the stored report; on a conflict, reads it again and retries with its resourceVersion. */
  /** The resourceVersion the API server gave a written report (what the next update must carry). */
  const versionOf = (written: unknown) =>
    (written as { metadata?: { resourceVersion?: string } } | null)?.metadata?.resourceVersion ?? '';

  /**
   * Replaces the stored report; on a conflict (written by someone else since it was read), reads
   * it again and retries with its resourceVersion. Returns the new resourceVersion and the conflicts met.
   */
  async function update(
    api: ReportApi,
    report: PolicyReport,
  ): Promise<{ version: string; conflicts: number }> {
    let body = report;
    for (let attempt = 1; ; attempt++) {
      if (!body.metadata.resourceVersion) {
        body = { ...body, metadata: { ...body.metadata, resourceVersion: await storedVersion(api, body) } };
      }
      try {
        const written = await custom.replaceNamespacedCustomObject(
          { ...target(api, body.metadata.namespace), name: body.metadata.name, body },
          options(),
        );
        return { version: versionOf(written), conflicts: attempt - 1 };
      } catch (error) {
        if (codeOf(error) !== 409 || attempt >= CONFLICT_ATTEMPTS) throw error;
        body = { ...body, metadata: { ...body.metadata, resourceVersion: '' } };
      }
    }
  }

  async function create(
    api: ReportApi,
    report: PolicyReport,
  ): Promise<{ outcome: 'created' | 'updated'; version: string; conflicts: number }> {
    const { resourceVersion: _, ...metadata } = report.metadata;
    try {
      const written = await custom.createNamespacedCustomObject(
        { ...target(api, report.metadata.namespace), body: { ...report, metadata } },
        options(),
      );
      return { outcome: 'created', version: versionOf(written), conflicts: 0 };
    } catch (error) {
      // Written meanwhile (another writer, a scan before a restart): update it instead.
      if (codeOf(error) !== 409) throw error;
      const updated = await update(api, { ...report, metadata: { ...metadata, resourceVersion: '' } });
      return { outcome: 'updated', version: updated.version, conflicts: updated.conflicts + 1 };
    }
  }

  async function remove(api: ReportApi, report: PolicyReport): Promise<void> {
    try {
      await custom.deleteNamespacedCustomObject(
        { ...target(api, report.metadata.namespace), name: report.metadata.name },
        options(),
      );
    } catch (error) {
      // Already gone: the garbage collector took it with its object.
      if (codeOf(error) !== 404) throw error;
    }
  }

  return {
    async discover() {
      try {
        const groups = await apis.getAPIVersions(options());
        const served: ReportApi[] = [];
        for (const api of REPORT_APIS) {
          const group = groups.groups?.find((g) => g.name === api.group);
          if (!group?.versions?.some((v) => v.version === api.version)) continue;
          // The group version may be served without this kind (another CRD of the group).
          const resources = await custom.getAPIResources(
            { group: api.group, version: api.version },
            options(),
          );
          if (resources.resources?.some((r) => r.name === api.plural && r.kind === api.kind))
            served.push(api);
        }
        const [api] = served;
        return api ? { outcome: 'found', api, served } : { outcome: 'none' };
      } catch (error) {
        return { outcome: 'failed', reason: error instanceof Error ? error.message : String(error) };
      }
    },

    async list(api, namespace) {
      const page = async ({ limit, continueToken }: { limit: number; continueToken: string | undefined }) =>
        (namespace
          ? await custom.listNamespacedCustomObject(
              { ...target(api, namespace), labelSelector: MANAGED_SELECTOR, limit, _continue: continueToken },
              options(),
            )
          : await custom.listCustomObjectForAllNamespaces(
              {
                group: api.group,
                version: api.version,
                plural: api.plural,
                labelSelector: MANAGED_SELECTOR,
                limit,
                _continue: continueToken,
              },
              options(),
            )) as Page<PolicyReport>;
      const { items } = await listAllPages(page);
      return items.map((r) => ({
        ...r,
        apiVersion: r.apiVersion ?? apiVersionOf(api),
        kind: r.kind ?? api.kind,
      }));
    },

    async apply(api, plan, mayWrite) {
      const result: WriteResult = {
        created: 0,
        updated: 0,
        deleted: 0,
        failed: 0,
        skipped: 0,
        conflicts: 0,
        versions: new Map(),
        apiGone: false,
      };
      const record = (r: PolicyReport, written: { version: string; conflicts: number }) => {
        result.versions.set(`${r.metadata.namespace}/${r.metadata.name}`, written.version);
        result.conflicts += written.conflicts;
      };
      const guarded = (what: string, write: () => Promise<void>) => async () => {
        if (!mayWrite()) {
          result.skipped++;
          return;
        }
        try {
          await write();
        } catch (error) {
          result.failed++;
          // A 404 on create means the kind itself is not served (a 404 on update: the report's
          // object went with it, which the next scan sees).
          if (codeOf(error) === 404 && what.startsWith('create')) result.apiGone = true;
          onError(error, what);
        }
      };
      const writes = [
        ...plan.create.map((r) =>
          guarded(`create ${api.kind} ${r.metadata.namespace}/${r.metadata.name}`, async () => {
            const written = await create(api, r);
            result[written.outcome]++;
            record(r, written);
          }),
        ),
        ...plan.update.map((r) =>
          guarded(`update ${api.kind} ${r.metadata.namespace}/${r.metadata.name}`, async () => {
            record(r, await update(api, r));
            result.updated++;
          }),
        ),
        ...plan.delete.map((r) =>
          guarded(`delete ${api.kind} ${r.metadata.namespace}/${r.metadata.name}`, async () => {
            await remove(api, r);
            result.deleted++;
          }),
        ),
      ];
      await inParallel(writes, WRITE_CONCURRENCY, (write) => write());
      return result;
    },
  };
}
