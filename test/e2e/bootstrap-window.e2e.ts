/**
 * The safe bootstrap's API-facing half on the real control plane: at CREATE, sts-guard lists the
 * StatefulSet's PersistentVolumeClaims (with deploy/'s RBAC) and opens an initiation window only
 * for a brand-new set; the StatefulSet controller's own claims close it for a re-creation. Also
 * the client-routing warning as kubectl prints it.
 */
import t from 'tap';
import { eventually } from '../support/wait.js';
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
const ns = 'bootstrap-window';

interface Stored {
  metadata: { generation: number; resourceVersion: string };
  spec: {
    template: {
      spec: { containers: Array<{ lifecycle?: { postStart?: { exec?: { command?: string[] } } } }> };
    };
  };
}

/** INITIATE_UNTIL from the stored hook: epoch seconds until which ordinal 0 may initiate; 0 never. */
async function initiationWindow(): Promise<number> {
  const sts = await getJson<Stored>(state, ['statefulset', 'mongodb', '-n', ns]);
  const script = sts.spec.template.spec.containers[0]?.lifecycle?.postStart?.exec?.command?.join('\n') ?? '';
  const until = /^INITIATE_UNTIL=(\d+)$/m.exec(script)?.[1];
  if (until === undefined) throw new Error(`no INITIATE_UNTIL in the stored hook:\n${script.slice(0, 400)}`);
  return Number(until);
}

t.test('a new StatefulSet gets an open window; one re-created over its claims gets none', async (t) => {
  await freshNamespace(state, ns);
  const unavailableBefore = metricSum(await stsGuardMetrics(state), 'sts_guard_lookups_total', {
    outcome: 'unavailable',
  });
  const created = await kubectl(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  t.equal(created.code, 0, { stderr: created.stderr });
  const now = Date.now() / 1000;
  t.ok((await initiationWindow()) > now, 'no claim existed: ordinal 0 may initiate for a while');
  t.equal(
    metricSum(await stsGuardMetrics(state), 'sts_guard_lookups_total', { outcome: 'unavailable' }),
    unavailableBefore,
    'the PersistentVolumeClaim list succeeded with the ServiceAccount token',
  );

  const before = await getJson<Stored>(state, ['statefulset', 'mongodb', '-n', ns]);
  const again = await kubectl(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  t.equal(again.code, 0, { stderr: again.stderr });
  const after = await getJson<Stored>(state, ['statefulset', 'mongodb', '-n', ns]);
  t.equal(
    after.metadata.resourceVersion,
    before.metadata.resourceVersion,
    'an UPDATE keeps the stamp: nothing rolls',
  );

  // The controller creates ordinal 0's claim; deleting the StatefulSet keeps it (Retain).
  await eventually('PVC mongodb-data-mongodb-0', async () =>
    (await kubectl(state, ['get', 'pvc', 'mongodb-data-mongodb-0', '-n', ns])).code === 0 ? true : undefined,
  );
  await kubectlOk(state, ['delete', 'statefulset', 'mongodb', '-n', ns, '--wait=true']);
  const recreated = await kubectl(state, ['apply', '-n', ns, '-f', scenario('compliant-replica-set')]);
  t.equal(recreated.code, 0, { stderr: recreated.stderr });
  t.match(
    recreated.stderr,
    /Warning: .*PersistentVolumeClaims mongodb-data-mongodb-0 of an earlier StatefulSet/,
  );
  t.equal(await initiationWindow(), 0, 're-created over retained claims: the hook only ever joins');
});

t.test(
  'a ClusterIP Service over a replicated MongoDB gets the client-routing warning in kubectl',
  async (t) => {
    await kubectlOk(state, ['scale', 'statefulset', 'mongodb', '-n', ns, '--replicas=3']);
    const applied = await kubectl(
      state,
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'mongodb' },
        spec: {
          selector: { 'app.kubernetes.io/name': 'mongodb' },
          ports: [{ name: 'mongodb', port: 27017 }],
        },
      }),
    );
    t.equal(applied.code, 0, 'warn by default: the Service is created', { stderr: applied.stderr });
    t.match(applied.stderr, /Warning: .*\[client-routing\].*SECONDARY included/);
    t.match(
      applied.stderr,
      `mongodb+srv://mongodb-headless.${ns}.svc.cluster.local/?replicaSet=rs0`,
      'with the fix in full',
    );
  },
);
