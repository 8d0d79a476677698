/**
 * What the Argo CD stories share: the state test/e2e/argocd/run.ts started, and the ways to read
 * what Argo CD itself reports (the Application's status) and what the API server recorded (its
 * audit log).
 */
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../../../support/wait.js';
import { type E2eState, kubectl, kubectlOk, loadState } from '../../support/env.js';
import { ARGOCD_NAMESPACE } from './components.js';
import type { LocalRepository } from './git.js';

export interface ArgoCdState extends E2eState {
  argocd: {
    /** What build-argocd.sh built: argocd, bin/, crds/, cert-manager-crds/. */
    build: string;
    dir: string;
    kubeconfig: string;
    metrics: { controller: string; repoServer: string; applicationSet: string };
    logs: Record<string, string>;
    repo: LocalRepository;
    /** Where stories append the figures the runner summarises (JSON lines). */
    figures: string;
  };
}

export function loadArgoCdState(): ArgoCdState {
  const state = loadState() as ArgoCdState;
  if (!state.argocd) {
    throw new Error('no Argo CD in STS_GUARD_E2E_STATE: run these stories with `npm run test:e2e:argocd`');
  }
  return state;
}

export interface ResourceStatus {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
  status?: string;
  health?: { status?: string; message?: string };
}

export interface SyncResultResource extends ResourceStatus {
  message?: string;
  hookPhase?: string;
  syncPhase?: string;
}

export interface Application {
  metadata: {
    name: string;
    uid: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec: {
    project: string;
    source: { repoURL: string; path: string; targetRevision: string };
    destination: { server?: string; name?: string; namespace: string };
    syncPolicy?: {
      automated?: { prune?: boolean; selfHeal?: boolean };
      syncOptions?: string[];
      retry?: { limit?: number; refresh?: boolean; backoff?: Record<string, unknown> };
    };
  };
  status?: {
    sync?: { status: string; revision?: string };
    health?: { status: string; message?: string };
    reconciledAt?: string;
    resources?: ResourceStatus[];
    conditions?: Array<{ type: string; message: string }>;
    history?: Array<{ id: number; revision: string; deployedAt: string }>;
    operationState?: {
      phase: string;
      message?: string;
      startedAt: string;
      finishedAt?: string;
      retryCount?: number;
      operation: {
        sync?: { revision?: string };
        retry?: Record<string, unknown>;
        initiatedBy?: { username?: string; automated?: boolean };
      };
      syncResult?: { revision: string; resources?: SyncResultResource[] };
    };
  };
}

export async function getApplication(state: ArgoCdState, name: string): Promise<Application | undefined> {
  const got = await kubectl(state, ['get', 'application', name, '-n', ARGOCD_NAMESPACE, '-o', 'json']);
  if (got.code !== 0) {
    if (got.stderr.includes('NotFound')) return undefined;
    throw new Error(`kubectl get application ${name}: ${got.stderr}`);
  }
  return JSON.parse(got.stdout) as Application;
}

/** Waits until Application `name` exists and `ready` holds for it; returns it. */
export async function waitForApplication(
  state: ArgoCdState,
  name: string,
  what: string,
  ready: (app: Application) => boolean,
  timeoutMs = 180_000,
): Promise<Application> {
  let last: Application | undefined;
  try {
    return await eventually(
      `${name}: ${what}`,
      async () => {
        last = await getApplication(state, name);
        return last && ready(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last status: ${JSON.stringify(
        {
          sync: last?.status?.sync,
          health: last?.status?.health,
          operationState: last?.status?.operationState,
        },
        null,
        1,
      )}`,
    );
  }
}

/** Synced at `revision`, with the last operation Succeeded for that same revision. */
export const syncedAt = (revision: string) => (app: Application) =>
  app.status?.sync?.status === 'Synced' &&
  app.status.sync.revision === revision &&
  app.status.operationState?.phase === 'Succeeded' &&
  app.status.operationState.syncResult?.revision === revision;

/**
 * A hard refresh, as the UI's "Hard Refresh" and `argocd app get --hard-refresh` request it: the
 * annotation argocd.argoproj.io/refresh=hard, which the controller removes once it has
 * regenerated the manifests and compared again. Resolves with the Application after that.
 */
export async function hardRefresh(state: ArgoCdState, name: string): Promise<Application> {
  // reconciledAt has one-second resolution: a refresh done within the second of the request
  // carries the same stamp as one done just before it, so compare against the second itself.
  const requested = Math.floor(Date.now() / 1000) * 1000;
  await kubectlOk(state, [
    'annotate',
    'application',
    name,
    '-n',
    ARGOCD_NAMESPACE,
    'argocd.argoproj.io/refresh=hard',
    '--overwrite',
  ]);
  // The controller drops the annotation in the same write as the status of that refresh.
  return waitForApplication(
    state,
    name,
    'the hard refresh to be done',
    (app) =>
      app.metadata.annotations?.['argocd.argoproj.io/refresh'] === undefined &&
      Date.parse(app.status?.reconciledAt ?? '') >= requested,
    90_000,
  );
}

/**
 * A sync as `argocd app sync` and the UI's Sync button request it: argocd-server (not run here)
 * writes the `operation` field with the Application's own sync options and retry strategy
 * (server/application Sync, util/argo SetAppOperation), and the controller carries it out.
 */
export async function requestSync(state: ArgoCdState, name: string, revision: string): Promise<void> {
  for (;;) {
    const app = (await getApplication(state, name)) as Application & {
      operation?: unknown;
      status: NonNullable<Application['status']>;
    };
    if (app.operation) throw new Error(`${name}: another operation is already in progress`);
    app.operation = {
      sync: {
        source: app.spec.source,
        revision,
        prune: false,
        syncOptions: app.spec.syncPolicy?.syncOptions,
      },
      initiatedBy: { username: 'sts-guard-e2e' },
      ...(app.spec.syncPolicy?.retry ? { retry: app.spec.syncPolicy.retry } : {}),
    };
    delete app.status.operationState;
    const replaced = await kubectl(state, ['replace', '-f', '-'], JSON.stringify(app));
    if (replaced.code === 0) return;
    if (!replaced.stderr.includes('the object has been modified')) {
      throw new Error(`kubectl replace application ${name}: ${replaced.stderr}`);
    }
  }
}

/**
 * Selects which overlay this cluster runs, as docs/gitops.md step 3 says: the label
 * sts-guard.io/environment on the in-cluster cluster Secret, which the ApplicationSet's cluster
 * generator matches (`undefined` removes it, and the ApplicationSet deletes the Application).
 */
export async function selectOverlay(state: ArgoCdState, overlay: string | undefined): Promise<void> {
  const label = overlay === undefined ? 'sts-guard.io/environment-' : `sts-guard.io/environment=${overlay}`;
  await kubectlOk(state, ['label', 'secret', 'in-cluster', '-n', ARGOCD_NAMESPACE, label, '--overwrite']);
}

/** One kube-apiserver audit event (Metadata level: StatefulSets and Services). */
export interface AuditEvent {
  verb: string;
  stage: string;
  requestURI: string;
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  responseStatus?: { code?: number; message?: string };
  annotations?: Record<string, string>;
  requestReceivedTimestamp: string;
}

/** Where the audit log ends now: read events after it with `auditEventsSince`. */
export const auditMark = (state: ArgoCdState) => statSync(state.auditLog).size;

export function auditEventsSince(state: ArgoCdState, mark: number): AuditEvent[] {
  const text = readFileSync(state.auditLog).subarray(mark).toString('utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === 'ResponseComplete');
}

export const isDryRun = (e: AuditEvent) => /[?&]dryRun=/.test(e.requestURI);
/** The application controller's requests (client-go's default User-Agent for the `argocd` binary). */
export const byArgoCd = (e: AuditEvent) => (e.userAgent ?? '').startsWith('argocd/');
/** Whether mutate.sts-guard.io was called on this request (the API server's own audit annotation). */
export const stsGuardMutated = (e: AuditEvent) =>
  Object.entries(e.annotations ?? {}).some(
    ([k, v]) => k.startsWith('mutation.webhook.admission.k8s.io/') && v.includes('"mutate.sts-guard.io"'),
  );

/** Records a figure for test/e2e/README.md; the runner prints them all at the end. */
export function recordFigure(state: ArgoCdState, figure: Record<string, unknown>): void {
  appendFileSync(state.argocd.figures, `${JSON.stringify(figure)}\n`);
}

export const logPath = (state: ArgoCdState, name: string) =>
  state.argocd.logs[name] ?? join(state.argocd.dir, `${name}.log`);
