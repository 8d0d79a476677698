import t from 'tap';
import { eventually } from '../support/wait.js';
import { freshNamespace, kubectl, kubectlOk, loadState, scenario } from './support/env.js';

const state = loadState();
const ns = 'scale';

const replicas = async (name: string) =>
  Number(await kubectlOk(state, ['get', 'statefulset', name, '-n', ns, '-o', 'jsonpath={.spec.replicas}']));

t.before(async () => {
  await freshNamespace(state, ns);
  await kubectlOk(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  await kubectlOk(state, ['apply', '-n', ns, '-f', scenario('standalone-without-replset')]);
});

t.test('kubectl scale of a MongoDB without --replSet is denied through statefulsets/scale', async (t) => {
  const scaled = await kubectl(state, [
    'scale',
    'statefulset',
    'mongodb-standalone',
    '-n',
    ns,
    '--replicas=3',
  ]);
  t.not(scaled.code, 0, 'kubectl scale fails');
  t.match(scaled.stderr, 'admission webhook "validate.sts-guard.io" denied the request');
  t.match(scaled.stderr, '[replica-set] container "mongodb" starts MongoDB without --replSet');
  t.equal(await replicas('mongodb-standalone'), 1, 'spec.replicas is unchanged');
});

t.test('kubectl scale to 1 is never held to the replica-set rules', async (t) => {
  const scaled = await kubectl(state, [
    'scale',
    'statefulset',
    'mongodb-standalone',
    '-n',
    ns,
    '--replicas=0',
  ]);
  t.equal(scaled.code, 0, 'scaling a standalone down is admitted', { stderr: scaled.stderr });
  t.equal(await replicas('mongodb-standalone'), 0);
});

t.test(
  'kubectl scale of a compliant replica set is admitted and the controller creates every member',
  async (t) => {
    const scaled = await kubectl(state, ['scale', 'statefulset', 'mongodb', '-n', ns, '--replicas=3']);
    t.equal(scaled.code, 0, 'kubectl scale succeeds', { stderr: scaled.stderr });
    t.equal(await replicas('mongodb'), 3);
    for (const ordinal of [0, 1, 2]) {
      await eventually(`PVC mongodb-data-mongodb-${ordinal} and Pod mongodb-${ordinal}`, async () => {
        const pvc = await kubectl(state, ['get', 'pvc', `mongodb-data-mongodb-${ordinal}`, '-n', ns]);
        const pod = await kubectl(state, ['get', 'pod', `mongodb-${ordinal}`, '-n', ns]);
        return pvc.code === 0 && pod.code === 0 ? true : undefined;
      });
    }
    t.pass('PVCs <claim>-<sts>-<ordinal> and Pods exist for ordinals 0, 1 and 2');
  },
);
