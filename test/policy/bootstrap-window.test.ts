/**
 * When the injected bootstrap hook may initiate a replica set (its initiation window), and when a
 * review changes the hook at all: its text lives in the pod template, so every change rolls the pods.
 */
import type { V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import { mongodb } from '../../src/engines/mongodb/index.js';
import {
  type MutationLookups,
  mutateStatefulSet,
  type PolicySettings,
  RESET_ANNOTATION,
  type StatefulSetReview,
} from '../../src/policy/index.js';
import { bootstrapScriptV2 } from '../support/fake-mongo-shell/bootstrap-v2.js';
import { defaultSettings, FIXED_NOW, newStatefulSetLookups, replicaSet } from '../support/fixtures.js';
import { applied } from '../support/json-patch.js';

const settings = defaultSettings();
const hookOf = (sts: V1StatefulSet) => sts.spec?.template.spec?.containers[0]?.lifecycle?.postStart;
const infoOf = (sts: V1StatefulSet) => {
  const hook = hookOf(sts);
  return hook ? mongodb.bootstrapHookInfo(hook) : undefined;
};
const claims = (...names: string[]): MutationLookups => ({
  claims: { outcome: 'found', claims: names.map((name) => ({ metadata: { name } })) },
  now: FIXED_NOW,
});
const create = (object: V1StatefulSet, found: MutationLookups, s: PolicySettings = settings) => {
  const review: StatefulSetReview = { operation: 'CREATE', namespace: 'grade-submission', object };
  return mutateStatefulSet(review, s, found);
};
const update = (object: V1StatefulSet, oldObject: V1StatefulSet, now = FIXED_NOW + 86_400) =>
  mutateStatefulSet({ operation: 'UPDATE', namespace: 'grade-submission', object, oldObject }, settings, {
    now,
  });
/** The StatefulSet as stored after its CREATE of a brand-new set. */
const stored = () => {
  const sts = replicaSet();
  return applied(sts, create(sts, newStatefulSetLookups()).patch);
};

t.test(
  'a CREATE with no claim of the StatefulSet yet opens the window for INITIATION_WINDOW_MINUTES',
  async (t) => {
    const m = create(replicaSet(), claims('other-data-redis-0', 'mongodb-data-mongodb-archive-0'));
    const out = applied(replicaSet(), m.patch);
    t.same(infoOf(out), {
      version: 'v3',
      current: true,
      window: { until: FIXED_NOW + settings.initiationWindowSeconds, resetToken: '' },
    });
    t.same(m.warnings, [], 'claims of other StatefulSets do not count');
  },
);

t.test(
  'a CREATE over claims an earlier StatefulSet of that name left gets no window, and says why',
  async (t) => {
    for (const claim of ['mongodb-data-mongodb-1', 'sts-guard-mongodb-data-mongodb-0']) {
      const m = create(replicaSet(), claims(claim));
      t.equal(infoOf(applied(replicaSet(), m.patch))?.window.until, 0, claim);
      t.match(m.warnings.join('\n'), `PersistentVolumeClaims ${claim} of an earlier StatefulSet`);
    }
    // A claim template of the user's own counts under its name.
    const own = replicaSet({ container: { volumeMounts: [{ name: 'data', mountPath: '/data/db' }] } });
    own.spec!.volumeClaimTemplates = [{ metadata: { name: 'data' } }];
    t.equal(infoOf(applied(own, create(own, claims('data-mongodb-2')).patch))?.window.until, 0);
  },
);

t.test('a CREATE whose claim look-up failed never opens the window', async (t) => {
  const unavailable: MutationLookups = {
    claims: { outcome: 'unavailable', reason: 'timed out' },
    now: FIXED_NOW,
  };
  const denied = create(replicaSet(), unavailable);
  t.same(denied.patch, []);
  t.match(denied.denial, 'could not list PersistentVolumeClaims');
  t.match(denied.denial, 'timed out');
  const warned = create(replicaSet(), unavailable, { ...settings, lookupFailureMode: 'warn' });
  t.equal(infoOf(applied(replicaSet(), warned.patch))?.window.until, 0);
  t.match(warned.warnings.join('\n'), `annotate ${RESET_ANNOTATION}`);
});

t.test('mutating the mutated CREATE again (reinvocation) changes nothing', async (t) => {
  const once = stored();
  t.same(create(once, { ...newStatefulSetLookups(), now: FIXED_NOW + 5 }).patch, []);
});

t.test('UPDATEs keep the hook and its window, so they roll no pods for it', async (t) => {
  const live = stored();
  const scaled = structuredClone(live);
  scaled.spec!.replicas = 5;
  t.same(update(scaled, live).patch, [], 'scaling');
  const newImage = structuredClone(live);
  newImage.spec!.template.spec!.containers[0]!.image = 'mongo:5.0';
  t.same(update(newImage, live).patch, [], 'a template change');
  // An apply of the original manifest (server-side apply drops what it does not own) gets the same hook back.
  const dropped = structuredClone(live);
  delete dropped.spec!.template.spec!.containers[0]!.lifecycle;
  t.same(hookOf(applied(dropped, update(dropped, live).patch)), hookOf(live));
});

t.test(
  'an older hook is upgraded only along with a template change that rolls the pods anyway',
  async (t) => {
    const v2 = {
      exec: {
        command: [
          '/bin/sh',
          '-c',
          bootstrapScriptV2({
            replicaSetName: 'rs0',
            serviceName: 'mongodb-headless',
            namespace: 'grade-submission',
            clusterDomain: 'cluster.local',
            port: 27017,
          }),
        ],
      },
    };
    const live = replicaSet({ container: { lifecycle: { postStart: v2 } } });
    t.same(mongodb.bootstrapHookInfo(v2), {
      version: 'v2',
      current: false,
      window: { until: 0, resetToken: '' },
    });

    const relabelled = structuredClone(live);
    relabelled.metadata!.labels = { ...relabelled.metadata?.labels, team: 'grades' };
    const kept = update(relabelled, live);
    t.same(kept.patch, [], 'a metadata-only UPDATE keeps v2');
    t.match(kept.warnings.join('\n'), 'keeps bootstrap hook v2');

    const newImage = structuredClone(live);
    newImage.spec!.template.spec!.containers[0]!.image = 'mongo:5.0';
    const upgraded = update(newImage, live);
    const out = applied(newImage, upgraded.patch);
    t.same(infoOf(out), { version: 'v3', current: true, window: { until: 0, resetToken: '' } }, 'no window');
    t.match(upgraded.warnings.join('\n'), 'bootstrap hook v2 upgraded to v3');
  },
);

t.test(`${RESET_ANNOTATION} reopens the window once per value`, async (t) => {
  const live = stored();
  const later = FIXED_NOW + 30 * 86_400;
  const annotated = structuredClone(live);
  annotated.metadata!.annotations = {
    ...annotated.metadata?.annotations,
    [RESET_ANNOTATION]: '2026-12-01 restore',
  };
  const reset = update(annotated, live, later);
  const out = applied(annotated, reset.patch);
  t.same(infoOf(out)?.window, {
    until: later + settings.initiationWindowSeconds,
    resetToken: '2026-12-01_restore',
  });
  t.match(reset.warnings.join('\n'), 'may initiate a NEW replica set');

  t.same(update(out, out, later + 60).patch, [], 'the same value again changes nothing');
  const again = structuredClone(out);
  again.metadata!.annotations![RESET_ANNOTATION] = 'second';
  t.equal(infoOf(applied(again, update(again, out, later + 120).patch))?.window.resetToken, 'second');
});
