import t from 'tap';
import { freshNamespace, kubectl, kubectlOk, loadState, scenario } from './support/env.js';

const state = loadState();

t.test("the seed's broken setups are refused by kubectl apply, with sts-guard's message", async (t) => {
  t.test('two MongoDB replicas without --replSet', async (t) => {
    const ns = 'seed-without-replset';
    await freshNamespace(state, ns);
    const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('seed-without-replset')]);
    t.not(applied.code, 0, 'kubectl apply fails');
    t.match(
      applied.stderr,
      `admission webhook "validate.sts-guard.io" denied the request: sts-guard denied StatefulSet "${ns}/mongodb"`,
    );
    t.match(applied.stderr, '[replica-set] container "mongodb" starts MongoDB without --replSet');
    t.match(
      applied.stderr,
      'Fix: set the args of container "mongodb" to: args: ["--replSet","rs0","--bind_ip_all"]',
    );
    t.notMatch(applied.stderr, '[headless-service]', 'the headless Service is right, so it is not blamed');
    // The Service in the same apply went through; the StatefulSet was never stored.
    await kubectlOk(state, ['get', 'service', 'mongodb-headless', '-n', ns]);
    const stored = await kubectl(state, ['get', 'statefulset', 'mongodb', '-n', ns]);
    t.match(stored.stderr, 'NotFound', 'no StatefulSet was stored');
  });

  t.test('serviceName naming a ClusterIP Service', async (t) => {
    const ns = 'seed-clusterip-service';
    await freshNamespace(state, ns);
    const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('seed-clusterip-service')]);
    t.not(applied.code, 0, 'kubectl apply fails');
    const clusterIP = (
      await kubectlOk(state, ['get', 'service', 'mongodb', '-n', ns, '-o', 'jsonpath={.spec.clusterIP}'])
    ).trim();
    t.match(clusterIP, /^\d+\.\d+\.\d+\.\d+$/, 'the API server allocated a cluster IP');
    t.match(
      applied.stderr,
      `[headless-service] spec.serviceName "mongodb" names a Service with clusterIP ${clusterIP}`,
      "the message quotes the IP the API server allocated, read by sts-guard's own look-up",
    );
    t.match(
      applied.stderr,
      'clusterIP cannot be changed in place: delete Service "mongodb" and create it headless',
    );
    t.notMatch(applied.stderr, '[replica-set]', '--replSet is set, so it is not blamed');
    const stored = await kubectl(state, ['get', 'statefulset', 'mongodb', '-n', ns]);
    t.match(stored.stderr, 'NotFound', 'no StatefulSet was stored');
  });
});
