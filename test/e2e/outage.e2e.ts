import t from 'tap';
import {
  freshNamespace,
  getJson,
  kubectl,
  kubectlOk,
  loadState,
  restartWebhook,
  scenario,
  stopWebhook,
} from './support/env.js';

const state = loadState();

t.test('while sts-guard is down (failurePolicy)', async (t) => {
  const ns = 'outage';
  const exempt = 'outage-exempt';
  await freshNamespace(state, ns);
  await freshNamespace(state, exempt, { 'sts-guard.io/exempt': 'true' });
  await kubectlOk(state, [
    'apply',
    '-n',
    ns,
    '-f',
    `${scenario('compliant-replica-set')}/1-headless-service.yaml`,
  ]);
  await stopWebhook(state);
  t.teardown(() => restartWebhook(state));

  t.test('a MongoDB StatefulSet create is refused (Fail), and nothing is stored', async (t) => {
    const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
    t.not(applied.code, 0);
    t.match(applied.stderr, 'failed calling webhook "mutate.sts-guard.io"');
    t.match(applied.stderr, /connection refused/);
    t.match((await kubectl(state, ['get', 'statefulset', 'mongodb', '-n', ns])).stderr, 'NotFound');
  });

  t.test('other workloads are untouched', async (t) => {
    const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('not-a-database')]);
    t.equal(applied.code, 0, 'a non-database StatefulSet is created', { stderr: applied.stderr });
  });

  t.test('a namespace labelled sts-guard.io/exempt=true is untouched', async (t) => {
    const applied = await kubectl(state, ['apply', '-n', exempt, '-f', scenario('compliant-replica-set')]);
    t.equal(applied.code, 0, 'MongoDB is created there', { stderr: applied.stderr });
    const sts = await getJson<{ metadata: { annotations?: Record<string, string> } }>(state, [
      'statefulset',
      'mongodb',
      '-n',
      exempt,
    ]);
    t.notOk(sts.metadata.annotations?.['sts-guard.io/injected'], 'and not mutated');
  });

  t.test('Services fail open (Ignore): a headless Service can be deleted', async (t) => {
    const deleted = await kubectl(state, ['delete', 'service', 'mongodb-headless', '-n', ns]);
    t.equal(deleted.code, 0, { stderr: deleted.stderr });
  });
});

t.test('once sts-guard is back, creates are reviewed again', async (t) => {
  // The previous test's teardown restarted it, the README's way without rebuilding.
  const ns = 'outage-recovered';
  await freshNamespace(state, ns);
  const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  t.equal(applied.code, 0, { stderr: applied.stderr });
  const sts = await getJson<{ metadata: { annotations?: Record<string, string> } }>(state, [
    'statefulset',
    'mongodb',
    '-n',
    ns,
  ]);
  t.match(sts.metadata.annotations?.['sts-guard.io/injected'] ?? '', 'bootstrap-hook');
});
