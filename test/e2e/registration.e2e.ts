import t from 'tap';
import { repoPath } from '../support/repo.js';
import {
  freshNamespace,
  getJson,
  kubectl,
  kubectlOk,
  loadState,
  metricSum,
  scenario,
  stsGuardMetrics,
} from './support/env.js';

const state = loadState();

interface WebhookConfiguration {
  webhooks: Array<{
    name: string;
    clientConfig: { url?: string };
    matchConditions?: Array<{ name: string }>;
  }>;
}

t.test("deploy/'s webhook configurations are accepted by the API server as written", async (t) => {
  const mutating = await getJson<WebhookConfiguration>(state, ['mutatingwebhookconfiguration', 'sts-guard']);
  const validating = await getJson<WebhookConfiguration>(state, [
    'validatingwebhookconfiguration',
    'sts-guard',
  ]);
  t.same(
    [...mutating.webhooks, ...validating.webhooks].map((w) => w.name),
    ['mutate.sts-guard.io', 'validate.sts-guard.io', 'services.validate.sts-guard.io'],
  );
  for (const w of [...mutating.webhooks, ...validating.webhooks]) {
    t.match(w.clientConfig.url ?? '', `${state.stsGuard.url}/`, `${w.name} calls this sts-guard`);
    t.ok((w.matchConditions ?? []).length > 0, `${w.name} keeps its matchConditions`);
  }
});

t.test('the API server compiles matchConditions: a broken expression is refused', async (t) => {
  // The negative control for the acceptance above: the same kind of object with a CEL syntax
  // error never reaches etcd, so acceptance means the API server compiled deploy/'s expressions.
  const broken = await kubectl(
    state,
    ['apply', '--dry-run=server', '-f', '-'],
    `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: broken-condition
webhooks:
  - name: broken.sts-guard.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    clientConfig:
      url: ${state.stsGuard.url}/validate
    rules:
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        resources: ["statefulsets"]
        operations: ["CREATE"]
    matchConditions:
      - name: broken
        expression: "object.spec.template.spec.containers.exists(c, "
`,
  );
  t.not(broken.code, 0);
  t.match(broken.stderr, /matchConditions\[0\]\.expression/);
});

t.test('a request the matchConditions skip never reaches sts-guard (its own metrics)', async (t) => {
  const ns = 'match-conditions';
  await freshNamespace(state, ns);
  // Only CREATE and UPDATE reviews are counted: an earlier story's namespace may still be
  // tearing down, and the namespace controller's DELETEs of its headless Services are (rightly)
  // sent to services.validate.sts-guard.io while this story runs.
  const reviews = async () => {
    const metrics = await stsGuardMetrics(state);
    return (
      metricSum(metrics, 'sts_guard_reviews_total', { operation: 'CREATE' }) +
      metricSum(metrics, 'sts_guard_reviews_total', { operation: 'UPDATE' })
    );
  };

  const before = await reviews();
  await kubectlOk(state, ['apply', '-n', ns, '-f', scenario('not-a-database')]);
  t.equal(await reviews(), before, 'creating a non-database StatefulSet was not sent to sts-guard');
  await kubectlOk(state, ['scale', 'statefulset', 'web', '-n', ns, '--replicas=1']);
  t.equal(await reviews(), before, 'neither was scaling it to 1 (scale-above-one-replica)');

  // The control: a MongoDB StatefulSet is sent to both webhooks, and the counter moves.
  await kubectlOk(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  t.equal(await reviews(), before + 2, 'a MongoDB StatefulSet CREATE reached /mutate and /validate');
});

t.test('kubectl apply -k deploy/overlays/self-signed is accepted whole (server-side dry run)', async (t) => {
  const applied = await kubectl(state, [
    'apply',
    '--dry-run=server',
    '-k',
    repoPath('deploy/overlays/self-signed'),
  ]);
  t.equal(applied.code, 0, 'accepted', { stderr: applied.stderr });
  for (const object of [
    'deployment.apps/sts-guard',
    'service/sts-guard',
    'serviceaccount/sts-guard',
    'clusterrole.rbac.authorization.k8s.io/sts-guard',
    'mutatingwebhookconfiguration.admissionregistration.k8s.io/sts-guard',
    'validatingwebhookconfiguration.admissionregistration.k8s.io/sts-guard',
  ]) {
    t.match(applied.stdout, object, `${object} is part of it`);
  }
});

t.test(
  "the ServiceAccount's RBAC is enough: sts-guard's look-ups, made with its TokenRequest token, succeed",
  async (t) => {
    // sts-guard runs in this suite with a kubeconfig holding only the ServiceAccount's token.
    const metrics = await stsGuardMetrics(state);
    t.ok(metricSum(metrics, 'sts_guard_lookups_total', { outcome: 'found' }) > 0, 'look-ups found objects');
    t.equal(
      metricSum(metrics, 'sts_guard_lookups_total', { outcome: 'unavailable' }),
      0,
      'no look-up failed',
    );

    const as = ['--as=system:serviceaccount:sts-guard:sts-guard'];
    const can = async (...args: string[]) =>
      (await kubectl(state, ['auth', 'can-i', ...args, ...as])).stdout.trim();
    t.equal(await can('watch', 'services', '-A'), 'yes');
    t.equal(await can('get', 'statefulsets', '-A'), 'yes');
    t.equal(await can('update', 'statefulsets', '-A'), 'no', 'no writes');
    t.equal(await can('get', 'secrets', '-A'), 'no', 'no Secrets');
  },
);
