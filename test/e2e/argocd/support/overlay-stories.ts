/**
 * The stories every overlay goes through under Argo CD (one e2e file per overlay calls this: the
 * overlays share namespace grade-submission, so they run one after another). Each asserts on what
 * Argo CD itself reports (status.sync, status.operationState, status.resources) and, for order and
 * admission, on kube-apiserver's audit log.
 *
 * No kubelet runs here: Pods are created but never start, so Deployments and the StatefulSet stay
 * Progressing and the Application's health is Progressing. Nothing here asserts Healthy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { eventually, getJson, kubectl, kubectlOk } from '../../support/env.js';
import {
  type Application,
  type ArgoCdState,
  auditEventsSince,
  auditMark,
  byArgoCd,
  getApplication,
  hardRefresh,
  isDryRun,
  loadArgoCdState,
  recordFigure,
  requestSync,
  selectOverlay,
  stsGuardMutated,
  syncedAt,
  waitForApplication,
} from './env.js';
import { commit, resetToTested, revert } from './git.js';

const NAMESPACE = 'grade-submission';
const HOOK_MARKER = '# sts-guard:mongodb-replica-set-bootstrap';
/** The compare and sync options kustomize/argocd's ApplicationSet declares. */
const COMPARE_OPTIONS = 'ServerSideDiff=true,IncludeMutationWebhook=true';
const SYNC_OPTIONS = ['CreateNamespace=true', 'ServerSideApply=true', 'PruneLast=true'];

/** How long the no-flapping window lasts, and how often it hard-refreshes. */
const WINDOW_SECONDS = Number(process.env.STS_GUARD_E2E_ARGOCD_WINDOW ?? 120);
const REFRESH_EVERY_SECONDS = 30;

interface Container {
  name: string;
  image: string;
  lifecycle?: unknown;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface StatefulSet {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: {
    replicas: number;
    template: { spec: { containers: Container[]; terminationGracePeriodSeconds?: number } };
    volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  };
}

const liveStatefulSet = (state: ArgoCdState) =>
  getJson<StatefulSet>(state, ['statefulset', 'mongodb', '-n', NAMESPACE]);
const mongodbOf = (sts: StatefulSet) => sts.spec.template.spec.containers.find((c) => c.name === 'mongodb');
const resourceKey = (r: { kind: string; name: string }) => `${r.kind}/${r.name}`;
const statefulSetEntry = (app: Application) =>
  app.status?.resources?.find((r) => r.kind === 'StatefulSet' && r.name === 'mongodb');

/** What Argo CD shows for the stack: sync and health per resource, and the Application's own. */
function summary(app: Application) {
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
async function observe(state: ArgoCdState, name: string, seconds: number) {
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
async function leave(state: ArgoCdState, app: string) {
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

  // Three members (dev has one) started without --replSet: sts-guard's replica-set rule.
  const breakPolicy = () =>
    commit(repo, 'mongodb: three members without --replSet', {
      'kustomize/base/mongodb.yaml': (text) =>
        text
          .replace('args: ["--replSet", "rs0", "--bind_ip_all"]', 'args: ["--bind_ip_all"]')
          .replace(/^ {2}replicas: 1$/m, '  replicas: 3'),
    });
  const carriesDenial = (t: Test, message: string, where: string) => {
    t.match(
      message,
      'admission webhook "validate.sts-guard.io" denied the request',
      `${where} carries sts-guard's denial`,
    );
    t.match(message, `sts-guard denied StatefulSet "${NAMESPACE}/mongodb"`);
    t.match(message, '[replica-set] container "mongodb" starts MongoDB without --replSet');
    // The fix keeps the args the commit wrote and adds the missing flag.
    t.match(
      message,
      'Fix: set the args of container "mongodb" to: args: ["--bind_ip_all","--replSet","rs0"]',
      'and its fix',
    );
  };
  /** Server-side diff dry-runs the new StatefulSet, so sts-guard refuses it in the comparison. */
  const refusedInComparison = async (t: Test, bad: string) => {
    await hardRefresh(state, app);
    const compared = await waitForApplication(
      state,
      app,
      'the comparison with the breaking commit to fail',
      (a) =>
        a.status?.sync?.revision === bad &&
        (a.status.conditions ?? []).some((c) => c.message.includes('denied the request')),
      120_000,
    );
    const condition = compared.status?.conditions?.find((c) => c.message.includes('denied the request'));
    t.equal(condition?.type, 'ComparisonError', 'a ComparisonError condition');
    carriesDenial(t, condition?.message ?? '', 'the condition');
    t.equal(compared.status?.sync?.status, 'Unknown', 'sync status Unknown: Argo CD could not compare');
    return compared;
  };

  t.test(
    `${overlay}: a policy-breaking commit is refused in the comparison, never synced; its revert is Synced`,
    async (t) => {
      const before = await liveStatefulSet(state);
      const lastSync = (await getApplication(state, app))?.status?.operationState?.startedAt;
      const bad = await breakPolicy();
      const compared = await refusedInComparison(t, bad);
      t.comment(`condition: ${compared.status?.conditions?.[0]?.message}`);
      t.equal(
        compared.status?.operationState?.startedAt,
        lastSync,
        'auto-sync started no sync (Argo CD skips it while the comparison fails)',
      );
      const after = await liveStatefulSet(state);
      t.equal(after.metadata.generation, before.metadata.generation, 'the live StatefulSet is unchanged');

      const started = Date.now();
      const fixed = await revert(repo, bad);
      await hardRefresh(state, app);
      const back = await waitForApplication(
        state,
        app,
        'Synced at the revert',
        (a) => a.status?.sync?.status === 'Synced' && a.status.sync.revision === fixed,
      );
      const seconds = (Date.now() - started) / 1000;
      t.comment(`${overlay}: revert pushed → hard refresh → Synced in ${seconds.toFixed(1)} s`);
      recordFigure(state, { figure: 'revert to Synced (no sync had started)', overlay, seconds });
      t.same(back.status?.conditions ?? [], [], 'the ComparisonError is gone');
      t.equal(back.status?.operationState?.startedAt, lastSync, 'with no sync needed');
    },
  );

  t.test(
    `${overlay}: a sync of a policy-breaking commit fails with sts-guard's message; its revert ends it Synced`,
    async (t) => {
      const before = await liveStatefulSet(state);
      const bad = await breakPolicy();
      await refusedInComparison(t, bad);
      // A sync anyway: argocd app sync, or the UI's Sync button.
      await requestSync(state, app, bad);
      const failed = await waitForApplication(
        state,
        app,
        'the sync of the breaking commit to fail',
        (a) =>
          a.status?.operationState?.operation.initiatedBy?.username === 'sts-guard-e2e' &&
          (a.status.operationState.message ?? '').includes('denied the request'),
        120_000,
      );
      const operation = failed.status?.operationState;
      t.comment(`operationState ${operation?.phase}: ${operation?.message}`);
      carriesDenial(t, operation?.message ?? '', 'operationState.message');
      // The sync compares first, with the same server-side diff, and stops there: nothing is applied.
      t.notOk(
        operation?.syncResult?.resources?.some((r) => r.kind === 'StatefulSet' && r.status === 'Synced'),
        'no StatefulSet was applied',
      );
      const after = await liveStatefulSet(state);
      t.equal(
        after.metadata.generation,
        before.metadata.generation,
        'the live StatefulSet is unchanged (same generation)',
      );
      t.same(after.spec, before.spec, 'and the same spec');

      const started = Date.now();
      const fixed = await revert(repo, bad);
      await hardRefresh(state, app);
      // The failed sync retries (retry.refresh: true): the next attempt takes the revert.
      const ended = await waitForApplication(
        state,
        app,
        'the failed sync to end Synced at the revert',
        syncedAt(fixed),
        600_000,
      );
      const seconds = (Date.now() - started) / 1000;
      const op = ended.status?.operationState;
      t.comment(
        `${overlay}: revert pushed → Synced, sync Succeeded after ${seconds.toFixed(1)} s (retries ${op?.retryCount ?? 0})`,
      );
      recordFigure(state, {
        figure: 'revert to Synced (a failed sync retrying)',
        overlay,
        seconds,
        retries: op?.retryCount ?? 0,
      });
      t.equal(op?.operation.initiatedBy?.username, 'sts-guard-e2e', 'the same sync operation, retried');
      t.equal(statefulSetEntry(ended)?.status, 'Synced');
      const reverted = await liveStatefulSet(state);
      t.same(
        reverted.spec.template,
        before.spec.template,
        'the pod template is the one before the breaking commit',
      );
    },
  );

  t.test(
    `${overlay}: self-heal reverts a hand edit of the live StatefulSet, and sts-guard admits it`,
    async (t) => {
      const before = await liveStatefulSet(state);
      const current = await getApplication(state, app);
      const revision = current?.status?.sync?.revision ?? '';
      const startedAt = current?.status?.operationState?.startedAt;
      const mark = auditMark(state);
      const grace = before.spec.template.spec.terminationGracePeriodSeconds;
      await kubectlOk(state, [
        'patch',
        'statefulset',
        'mongodb',
        '-n',
        NAMESPACE,
        '--type=json',
        '-p',
        JSON.stringify([
          { op: 'replace', path: '/spec/template/spec/terminationGracePeriodSeconds', value: 77 },
        ]),
      ]);
      const healed = await waitForApplication(
        state,
        app,
        'self-heal to sync the edit away',
        (a) => syncedAt(revision)(a) && a.status?.operationState?.startedAt !== startedAt,
        120_000,
      );
      const after = await liveStatefulSet(state);
      t.equal(
        after.spec.template.spec.terminationGracePeriodSeconds,
        grace,
        `terminationGracePeriodSeconds is back to ${grace}`,
      );
      t.same(
        mongodbOf(after)?.lifecycle,
        mongodbOf(before)?.lifecycle,
        'the bootstrap hook is the one sts-guard injected at CREATE',
      );
      t.same(
        after.spec.volumeClaimTemplates,
        before.spec.volumeClaimTemplates,
        'the claim templates are unchanged',
      );
      const heal = auditEventsSince(state, mark).filter(
        (e) =>
          e.objectRef?.resource === 'statefulsets' &&
          e.objectRef.name === 'mongodb' &&
          byArgoCd(e) &&
          !isDryRun(e) &&
          e.verb === 'patch',
      );
      t.ok(heal.length > 0, "the audit log holds Argo CD's self-heal write");
      t.ok(
        heal.every((e) => (e.responseStatus?.code ?? 0) === 200),
        'admitted',
      );
      t.ok(heal.every(stsGuardMutated), 'through mutate.sts-guard.io');
      t.equal(statefulSetEntry(healed)?.status, 'Synced');
    },
  );

  t.test(`${overlay}: an image bump commit syncs, changing only the image`, async (t) => {
    const before = await liveStatefulSet(state);
    const image = mongodbOf(before)?.image;
    t.equal(image, 'mongo:4.4');
    const started = Date.now();
    const bumped = await commit(repo, 'mongodb: mongo 4.4.29', {
      'kustomize/base/mongodb.yaml': (text) => text.replace('image: mongo:4.4\n', 'image: mongo:4.4.29\n'),
    });
    await hardRefresh(state, app);
    const app2 = await waitForApplication(state, app, 'Synced at the image bump', syncedAt(bumped), 180_000);
    const seconds = (Date.now() - started) / 1000;
    t.comment(
      `${overlay}: image bump pushed → hard refresh → Synced and Succeeded in ${seconds.toFixed(1)} s`,
    );
    recordFigure(state, { figure: 'commit to Synced after a hard refresh (image bump)', overlay, seconds });
    const after = await liveStatefulSet(state);
    t.equal(mongodbOf(after)?.image, 'mongo:4.4.29', 'the new image is live');
    const template = structuredClone(after.spec.template);
    const mongodb = template.spec.containers.find((c) => c.name === 'mongodb');
    if (mongodb) mongodb.image = 'mongo:4.4';
    t.same(
      template,
      before.spec.template,
      'the pod template changed only in the image: the hook was not rewritten',
    );
    t.same(
      after.spec.volumeClaimTemplates,
      before.spec.volumeClaimTemplates,
      'the claim templates are unchanged',
    );
    t.equal(
      after.metadata.annotations?.['sts-guard.io/injected'],
      before.metadata.annotations?.['sts-guard.io/injected'],
    );
    t.equal(after.metadata.generation, before.metadata.generation + 1, 'one new generation');
    t.equal(statefulSetEntry(app2)?.status, 'Synced');
  });

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
