/**
 * On the Lambda path (npm run test:e2e:lambda): deploy/serverless/webhook-url's registration
 * reaches the function through the Function URL front, and a compliant MongoDB StatefulSet is
 * admitted and stored with what sts-guard injects, as on the Deployment path.
 */
import t from 'tap';
import { eventually } from '../../support/wait.js';
import { freshNamespace, getJson, kubectlOk, scenario } from '../support/env.js';
import { readJournal } from '../support/function-url.js';
import { loadLambdaState } from '../support/lambda.js';

const state = loadLambdaState();
const ns = 'lambda-mutation';

interface StoredStatefulSet {
  metadata: { annotations?: Record<string, string> };
  spec: {
    volumeClaimTemplates?: Array<{ metadata: { name: string }; spec: { accessModes: string[] } }>;
    template: {
      spec: {
        containers: Array<{
          lifecycle?: { postStart?: { exec?: { command?: string[] } } };
          volumeMounts?: Array<{ name: string; mountPath: string }>;
        }>;
      };
    };
  };
}

t.test("the API server calls the function's Function URL for every sts-guard webhook", async (t) => {
  const mutating = await kubectlOk(state, [
    'get',
    'mutatingwebhookconfiguration',
    'sts-guard',
    '-o',
    'jsonpath={.webhooks[*].clientConfig.url}',
  ]);
  const validating = await kubectlOk(state, [
    'get',
    'validatingwebhookconfiguration',
    'sts-guard',
    '-o',
    'jsonpath={.webhooks[*].clientConfig.url}',
  ]);
  t.same(mutating.split(' '), [`${state.lambda.frontUrl}/mutate`]);
  t.same(validating.split(' '), [`${state.lambda.frontUrl}/validate`, `${state.lambda.frontUrl}/validate`]);
});

t.test(
  'a compliant MongoDB StatefulSet is admitted and stored with the hook and a claim template',
  async (t) => {
    await freshNamespace(state, ns);
    const before = readJournal(state.lambda.journal).length;
    const applied = await kubectlOk(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
    t.match(applied, 'statefulset.apps/mongodb created');

    const sts = await getJson<StoredStatefulSet>(state, ['statefulset', 'mongodb', '-n', ns]);
    const container = sts.spec.template.spec.containers[0];
    const script = container?.lifecycle?.postStart?.exec?.command?.at(-1) ?? '';
    t.match(script, '# sts-guard:mongodb-replica-set-bootstrap', 'the postStart hook is stored');
    const until = Number(/^INITIATE_UNTIL=(\d+)$/m.exec(script)?.[1]);
    t.ok(
      until > Date.now() / 1000,
      'with an open initiation window: the function listed the claims and found none',
    );
    t.same(
      (sts.spec.volumeClaimTemplates ?? []).map((c) => c.metadata.name),
      ['mongodb-data'],
      'a claim template is stored',
    );
    t.same(
      container?.volumeMounts,
      [{ name: 'mongodb-data', mountPath: '/data/db' }],
      'and mounted at /data/db',
    );
    t.equal(sts.metadata.annotations?.['sts-guard.io/injected'], 'bootstrap-hook,storage');

    const served = readJournal(state.lambda.journal)
      .slice(before)
      .filter((i) => i.body.includes(`"namespace":"${ns}"`));
    t.same(
      served.map((i) => [i.path, i.statusCode]),
      [
        ['/mutate', 200],
        ['/validate', 200],
      ],
      'the function answered the mutation and the validation, through the front',
    );

    await eventually('PVC mongodb-data-mongodb-0 and Pod mongodb-0 created by the controller', async () => {
      const pod = await kubectlOk(state, ['get', 'pods', '-n', ns, '-o', 'name']).catch(() => '');
      const pvc = await kubectlOk(state, ['get', 'pvc', '-n', ns, '-o', 'name']).catch(() => '');
      return pod.includes('pod/mongodb-0') && pvc.includes('mongodb-data-mongodb-0') ? true : undefined;
    });
  },
);
