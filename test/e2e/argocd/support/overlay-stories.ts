/**
 * The stories every overlay goes through under Argo CD (one e2e file per overlay calls this: the
 * overlays share namespace grade-submission, so they run one after another). Each asserts on what
 * Argo CD itself reports (status.sync, status.operationState, status.resources) and, for order and
 * admission, on kube-apiserver's audit log.
 *
 * No kubelet runs here: Pods are created but never start, so Deployments and the StatefulSet stay
 * Progressing and the Application's health is Progressing. Nothing here asserts Healthy.
 */
import t from 'tap';
import { eventually } from '../../../support/wait.js';
import { getJson, kubectl, kubectlOk } from '../../support/env.js';
import { changeStories } from './change-stories.js';
import {
  type Application,
  auditEventsSince,
  auditMark,
  byArgoCd,
  getApplication,
  isDryRun,
  loadArgoCdState,
  recordFigure,
  selectOverlay,
  stsGuardMutated,
  syncedAt,
  waitForApplication,
} from './env.js';
import { resetToTested } from './git.js';
import {
  HOOK_MARKER,
  leave,
  liveStatefulSet,
  mongodbOf,
  NAMESPACE,
  observe,
  REFRESH_EVERY_SECONDS,
  resourceKey,
  statefulSetEntry,
  summary,
  WINDOW_SECONDS,
} from './stack.js';

/** The compare and sync options kustomize/argocd's ApplicationSet declares. */
const COMPARE_OPTIONS = 'ServerSideDiff=true,IncludeMutationWebhook=true';
const SYNC_OPTIONS = ['CreateNamespace=true', 'ServerSideApply=true', 'PruneLast=true'];

export function overlayStories(overlay: string): void {
  const state = loadArgoCdState();
  const repo = state.argocd.repo;
  const app = `grade-submission-${overlay}`;
  let control: ReturnType<typeof summary> | undefined;
  let controlNotSynced: string[] = [];

  t.before(async () => {
    await resetToTested(repo);
    await leave(state, app);
  });

  t.test(
    `${overlay}, the control: sts-guard not called (namespace labelled sts-guard.io/exempt=true)`,
    async (t) => {
      await kubectlOk(state, ['create', 'namespace', NAMESPACE]);
      await kubectlOk(state, ['label', 'namespace', NAMESPACE, 'sts-guard.io/exempt=true']);
      try {
        await selectOverlay(state, overlay);
        await waitForApplication(state, app, 'Synced after its first sync', syncedAt(repo.tested));
        const sts = await liveStatefulSet(state);
        t.notOk(
          sts.metadata.annotations?.['sts-guard.io/injected'],
          'the StatefulSet was not mutated: sts-guard was not called',
        );
        const watched = await observe(state, app, REFRESH_EVERY_SECONDS);
        control = watched.last && summary(watched.last);
        controlNotSynced = watched.notSynced;
        t.comment(`control: ${JSON.stringify({ ...control, notSynced: watched.notSynced })}`);
      } finally {
        // The real run starts from no namespace at all, whatever happened here.
        await leave(state, app);
      }
    },
  );

  let synced: Application | undefined;
  let syncMark = 0;
  t.test(`${overlay}: the generated Application syncs from an empty namespace`, async (t) => {
    const absent = await kubectl(state, ['get', 'namespace', NAMESPACE]);
    t.not(absent.code, 0, `namespace ${NAMESPACE} does not exist: Argo CD creates it (CreateNamespace=true)`);
    syncMark = auditMark(state);
    const started = Date.now();
    await selectOverlay(state, overlay);
    synced = await waitForApplication(state, app, 'Synced, operation Succeeded', syncedAt(repo.tested));
    const seconds = (Date.now() - started) / 1000;
    t.comment(`${overlay}: label set → Synced and Succeeded in ${seconds.toFixed(1)} s`);
    recordFigure(state, { figure: 'label to Synced (first sync, empty namespace)', overlay, seconds });

    t.equal(
      synced.metadata.annotations?.['argocd.argoproj.io/compare-options'],
      COMPARE_OPTIONS,
      'compare options as the bundle declares them',
    );
    t.same(synced.spec.syncPolicy?.syncOptions, SYNC_OPTIONS, 'sync options as the bundle declares them');
    t.equal(synced.spec.source.repoURL, repo.url);
    t.equal(synced.spec.source.path, `kustomize/overlays/${overlay}`);
    t.same(synced.status?.conditions ?? [], [], 'no condition (error or warning) on the Application');

    const results = synced.status?.operationState?.syncResult?.resources ?? [];
    t.same(
      results.filter((r) => r.status !== 'Synced').map((r) => `${resourceKey(r)}: ${r.message}`),
      [],
      'every resource of the sync applied',
    );
    t.match(
      results.find((r) => r.kind === 'StatefulSet')?.message ?? '',
      /serverside-applied/,
      'the StatefulSet was applied server-side',
    );
    const entry = statefulSetEntry(synced);
    t.equal(entry?.status, 'Synced', "status.resources: the StatefulSet's own entry is Synced");
    // No kubelet: no Pod ever runs, so nothing becomes Ready. Argo CD says Progressing, never
    // Healthy. (Argo CD 3 keeps per-resource health out of status.resources by default.)
    t.equal(
      synced.status?.health?.status,
      'Progressing',
      'the Application is Progressing (no kubelet runs its Pods)',
    );

    const sts = await liveStatefulSet(state);
    t.match(
      JSON.stringify(mongodbOf(sts)?.lifecycle ?? {}),
      HOOK_MARKER,
      'sts-guard injected the bootstrap hook during the sync',
    );
    t.match(sts.metadata.annotations?.['sts-guard.io/injected'] ?? '', 'bootstrap-hook');
  });

  t.test(
    `${overlay}: the sync is never refused; the headless Service reaches the API server first`,
    async (t) => {
      const events = auditEventsSince(state, syncMark).filter(
        (e) => e.objectRef?.namespace === NAMESPACE && byArgoCd(e),
      );
      const writes = events.filter((e) => ['create', 'patch', 'update'].includes(e.verb) && !isDryRun(e));
      const firstWrite = (resource: string, name: string) =>
        writes.find(
          (e) =>
            e.objectRef?.resource === resource &&
            e.objectRef.name === name &&
            (e.responseStatus?.code ?? 0) < 300,
        );
      const service = firstWrite('services', 'mongodb-headless');
      const sts = firstWrite('statefulsets', 'mongodb');
      t.ok(service && sts, "the audit log holds Argo CD's writes of both");
      if (service && sts) {
        t.ok(
          service.requestReceivedTimestamp < sts.requestReceivedTimestamp,
          `Service mongodb-headless (${service.requestReceivedTimestamp}) before StatefulSet mongodb (${sts.requestReceivedTimestamp})`,
        );
        t.ok(
          stsGuardMutated(sts),
          "the API server called mutate.sts-guard.io on Argo CD's StatefulSet write",
        );
      }
      const refused = events.filter(
        (e) =>
          e.objectRef?.resource === 'statefulsets' &&
          ['create', 'patch', 'update'].includes(e.verb) &&
          (e.responseStatus?.code ?? 0) >= 400,
      );
      t.same(
        refused.map(
          (e) => `${e.verb} ${e.requestURI}: ${e.responseStatus?.code} ${e.responseStatus?.message}`,
        ),
        [],
        "no StatefulSet request of Argo CD's was refused, dry runs included",
      );
    },
  );

  t.test(`${overlay}: stays Synced across hard refreshes for ${WINDOW_SECONDS} s`, async (t) => {
    const before = await getApplication(state, app);
    const mark = auditMark(state);
    const watched = await observe(state, app, WINDOW_SECONDS);
    const after = watched.last;
    t.ok(
      watched.refreshes >= Math.floor(WINDOW_SECONDS / REFRESH_EVERY_SECONDS),
      `${watched.refreshes} hard refreshes, each compared again`,
    );
    t.same(watched.syncStatuses, ['Synced'], 'every status read in the window said Synced');
    t.same(watched.notSynced, [], 'no resource was ever reported OutOfSync');
    t.equal(
      after && statefulSetEntry(after)?.status,
      'Synced',
      "the StatefulSet's entry is Synced at the end",
    );
    t.equal(
      after?.status?.operationState?.startedAt,
      before?.status?.operationState?.startedAt,
      'no sync was started in the window (an auto-sync would mean Argo CD saw drift)',
    );
    t.equal(after?.status?.history?.length, before?.status?.history?.length, 'the sync history did not grow');
    // The comparisons went through sts-guard: server-side diff dry-runs the StatefulSet, and the
    // API server called the mutating webhook on each of them.
    const dryRuns = auditEventsSince(state, mark).filter(
      (e) =>
        e.objectRef?.resource === 'statefulsets' &&
        e.objectRef.namespace === NAMESPACE &&
        isDryRun(e) &&
        byArgoCd(e),
    );
    t.ok(
      dryRuns.length >= watched.refreshes,
      `${dryRuns.length} server-side diff dry-runs of the StatefulSet`,
    );
    t.ok(dryRuns.every(stsGuardMutated), 'each dry-run called mutate.sts-guard.io');
    t.same(dryRuns.filter((e) => (e.responseStatus?.code ?? 0) >= 400).length, 0, 'no dry-run was refused');

    // Against the control: whatever Argo CD shows without sts-guard, it shows no more with it.
    t.ok(control, 'the control ran');
    if (after && control)
      t.same(summary(after), control, 'the same sync and health, resource by resource, as the control');
    t.same(
      watched.notSynced.filter((r) => !controlNotSynced.includes(r)),
      [],
      'nothing OutOfSync that the control did not show',
    );
    recordFigure(state, {
      figure: 'no-flapping window',
      overlay,
      seconds: WINDOW_SECONDS,
      refreshes: watched.refreshes,
      dryRuns: dryRuns.length,
    });
  });

  changeStories(state, overlay, app);

  t.test(
    `${overlay}: when the cluster stops selecting the overlay, the Application goes and the stack stays`,
    async (t) => {
      await selectOverlay(state, undefined);
      await eventually(`Application ${app} to be deleted by the ApplicationSet`, async () =>
        (await getApplication(state, app)) === undefined ? true : undefined,
      );
      // preserveResourcesOnDeletion, and no resources finalizer on the generated Application.
      const left = await getJson<{ items: Array<{ kind: string; metadata: { name: string } }> }>(state, [
        'statefulsets,services,deployments',
        '-n',
        NAMESPACE,
      ]);
      t.same(
        left.items.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
        [
          'Deployment/grade-submission-api',
          'Deployment/grade-submission-portal',
          'Service/grade-submission-api',
          'Service/grade-submission-portal',
          'Service/mongodb',
          'Service/mongodb-headless',
          'StatefulSet/mongodb',
        ],
        'every object of the stack is still there',
      );
    },
  );

  t.teardown(async () => {
    await leave(state, app);
    await resetToTested(repo);
  });
}
