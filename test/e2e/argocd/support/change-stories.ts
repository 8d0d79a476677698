/**
 * What changes under an overlay once Argo CD has synced it: a commit sts-guard refuses (in the
 * comparison, and in a sync started anyway) and its revert, a hand edit that self-heal reverts, an
 * image bump. Called by overlayStories, in order, after the first sync.
 */
import t, { type Test } from 'tap';
import { kubectlOk } from '../../support/env.js';
import {
  type ArgoCdState,
  auditEventsSince,
  auditMark,
  byArgoCd,
  getApplication,
  hardRefresh,
  isDryRun,
  recordFigure,
  requestSync,
  stsGuardMutated,
  syncedAt,
  waitForApplication,
} from './env.js';
import { commit, revert } from './git.js';
import { liveStatefulSet, mongodbOf, NAMESPACE, statefulSetEntry } from './stack.js';

export function changeStories(state: ArgoCdState, overlay: string, app: string): void {
  const repo = state.argocd.repo;
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
}
