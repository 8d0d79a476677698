import t from 'tap';
import { freshNamespace, kubectl, kubectlOk, loadState, scenario } from './support/env.js';

const state = loadState();
const ns = 'service-protection';

t.before(async () => {
  await freshNamespace(state, ns);
  await kubectlOk(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  await kubectlOk(state, ['scale', 'statefulset', 'mongodb', '-n', ns, '--replicas=3']);
});

t.test('deleting the headless Service of a replicated MongoDB is refused', async (t) => {
  const deleted = await kubectl(state, ['delete', 'service', 'mongodb-headless', '-n', ns]);
  t.not(deleted.code, 0, 'kubectl delete fails');
  t.match(deleted.stderr, 'admission webhook "services.validate.sts-guard.io" denied the request');
  t.match(deleted.stderr, 'mongodb');
  await kubectlOk(state, ['get', 'service', 'mongodb-headless', '-n', ns]);
});

t.test('making it non-headless is refused', async (t) => {
  // The API server itself refuses a new clusterIP (the field is immutable)...
  const clusterIP = await kubectl(state, [
    'patch',
    'service',
    'mongodb-headless',
    '-n',
    ns,
    '--type=merge',
    '-p',
    '{"spec":{"clusterIP":"10.96.0.77"}}',
  ]);
  t.not(clusterIP.code, 0, 'setting a clusterIP fails');
  t.match(
    clusterIP.stderr,
    /spec.clusterIPs\[0\].*may not change once set/,
    'refused by the API server: clusterIP is immutable',
  );
  // ...but turning it into an ExternalName Service (which clears clusterIP) is valid to the API
  // server, and only sts-guard stops it.
  const externalName = await kubectl(state, [
    'patch',
    'service',
    'mongodb-headless',
    '-n',
    ns,
    '--type=merge',
    '-p',
    '{"spec":{"type":"ExternalName","externalName":"db.example.invalid","clusterIP":null,"clusterIPs":null,"publishNotReadyAddresses":null}}',
  ]);
  t.not(externalName.code, 0, 'the change to ExternalName fails');
  t.match(externalName.stderr, 'admission webhook "services.validate.sts-guard.io" denied the request');
  const stored = await kubectlOk(state, [
    'get',
    'service',
    'mongodb-headless',
    '-n',
    ns,
    '-o',
    'jsonpath={.spec.clusterIP}',
  ]);
  t.equal(stored, 'None', 'the stored Service is still headless');
});

t.test('a headless Service that no replicated MongoDB names can be deleted', async (t) => {
  await kubectlOk(
    state,
    ['apply', '-n', ns, '-f', '-'],
    'apiVersion: v1\nkind: Service\nmetadata:\n  name: unrelated-headless\nspec:\n  clusterIP: None\n  selector:\n    app: unrelated\n  ports:\n    - port: 80\n',
  );
  const deleted = await kubectl(state, ['delete', 'service', 'unrelated-headless', '-n', ns]);
  t.equal(deleted.code, 0, 'deleted', { stderr: deleted.stderr });
});
