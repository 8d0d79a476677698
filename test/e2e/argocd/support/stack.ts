/**
 * Reading the grade-submission stack and what Argo CD reports about it, for the overlay stories:
 * the live StatefulSet, a summary of the Application's status, a watch over a window of hard
 * refreshes, and leaving an overlay.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../../../support/wait.js';
import { getJson, kubectl } from '../../support/env.js';
import { type Application, type ArgoCdState, getApplication, hardRefresh, selectOverlay } from './env.js';

export const NAMESPACE = 'grade-submission';
export const HOOK_MARKER = '# sts-guard:mongodb-replica-set-bootstrap';

/** How long the no-flapping window lasts, and how often it hard-refreshes. */
export const WINDOW_SECONDS = Number(process.env.STS_GUARD_E2E_ARGOCD_WINDOW ?? 120);
export const REFRESH_EVERY_SECONDS = 30;

interface Container {
  name: string;
  image: string;
  lifecycle?: unknown;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
export interface StatefulSet {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: {
    replicas: number;
    template: { spec: { containers: Container[]; terminationGracePeriodSeconds?: number } };
    volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  };
}

export const liveStatefulSet = (state: ArgoCdState) =>
  getJson<StatefulSet>(state, ['statefulset', 'mongodb', '-n', NAMESPACE]);
export const mongodbOf = (sts: StatefulSet) =>
  sts.spec.template.spec.containers.find((c) => c.name === 'mongodb');
export const resourceKey = (r: { kind: string; name: string }) => `${r.kind}/${r.name}`;
export const statefulSetEntry = (app: Application) =>
  app.status?.resources?.find((r) => r.kind === 'StatefulSet' && r.name === 'mongodb');

/** What Argo CD shows for the stack: sync and health per resource, and the Application's own. */
export function summary(app: Application) {
  return {
    sync: app.status?.sync?.status,
    health: app.status?.health?.status,
    conditions: (app.status?.conditions ?? []).map((c) => c.type).sort(),
    resources: (app.status?.resources ?? [])
      .map((r) => `${resourceKey(r)} ${r.status} ${r.health?.status ?? '-'}`)
      .sort(),
  };
}

/**
 * Watches the Application for `seconds`, hard-refreshing every REFRESH_EVERY_SECONDS and reading
 * its status every second. Returns every resource ever reported not Synced, every sync status
 * seen, how many hard refreshes completed, and the last status.
 */
export async function observe(state: ArgoCdState, name: string, seconds: number) {
  const notSynced = new Set<string>();
  const syncStatuses = new Set<string>();
  let refreshes = 0;
  let last: Application | undefined;
  const deadline = Date.now() + seconds * 1000;
  let nextRefresh = Date.now();
  while (Date.now() < deadline) {
    if (Date.now() >= nextRefresh) {
      last = await hardRefresh(state, name);
      refreshes++;
      nextRefresh = Date.now() + REFRESH_EVERY_SECONDS * 1000;
    } else {
      last = await getApplication(state, name);
    }
    if (last?.status?.sync?.status) syncStatuses.add(last.status.sync.status);
    for (const r of last?.status?.resources ?? []) if (r.status !== 'Synced') notSynced.add(resourceKey(r));
    await sleep(1000);
  }
  return { notSynced: [...notSynced].sort(), syncStatuses: [...syncStatuses].sort(), refreshes, last };
}

/** The overlay leaves: the Application goes (the ApplicationSet deletes it), then the namespace. */
export async function leave(state: ArgoCdState, app: string) {
  await selectOverlay(state, undefined);
  await eventually(`Application ${app} to be deleted by the ApplicationSet`, async () =>
    (await getApplication(state, app)) === undefined ? true : undefined,
  );
  await kubectl(state, [
    'delete',
    'namespace',
    NAMESPACE,
    '--wait=true',
    '--ignore-not-found',
    '--timeout=180s',
  ]);
}
