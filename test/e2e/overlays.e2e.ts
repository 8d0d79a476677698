import { readdirSync } from 'node:fs';
import t, { type Test } from 'tap';
import {
  type E2eState,
  eventually,
  freshNamespace,
  getJson,
  kubectl,
  loadState,
  repoPath,
} from './support/env.js';

const state = loadState();
const NAMESPACE = 'grade-submission';
const HOOK_MARKER = '# sts-guard:mongodb-replica-set-bootstrap';

interface Container {
  name: string;
  lifecycle?: { postStart?: { exec?: { command?: string[] } } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface StatefulSet {
  metadata: { resourceVersion: string; generation: number; annotations?: Record<string, string> };
  spec: {
    template: { spec: { containers: Container[] } };
    volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  };
}
interface Listed {
  items: Array<{ kind: string; metadata: { name: string; resourceVersion: string; generation?: number } }>;
}

const overlays = readdirSync(repoPath('kustomize/overlays')).sort();
const hookOf = (c: Container | undefined) => c?.lifecycle?.postStart?.exec?.command?.join('\n') ?? '';

/** What `apply` stored: every object of the stack with its resourceVersion and generation. */
async function versions(state: E2eState): Promise<Record<string, string>> {
  const list = await getJson<Listed>(state, ['statefulsets,deployments,services', '-n', NAMESPACE]);
  return Object.fromEntries(
    list.items.map((o) => [
      `${o.kind}/${o.metadata.name}`,
      `${o.metadata.resourceVersion}@${o.metadata.generation ?? '-'}`,
    ]),
  );
}

async function diffExitsZero(t: Test, dir: string) {
  for (const flags of [[], ['--server-side']]) {
    const diff = await kubectl(state, ['diff', ...flags, '-k', dir]);
    t.equal(diff.code, 0, `kubectl diff ${flags.join(' ')} -k shows no drift`, {
      diff: diff.stdout,
      stderr: diff.stderr,
    });
  }
}

for (const overlay of overlays) {
  const dir = repoPath(`kustomize/overlays/${overlay}`);
  for (const applyFlags of [[], ['--server-side']]) {
    const how = `kubectl apply ${applyFlags.join(' ')} -k`.replace('  ', ' ');
    t.test(`overlay ${overlay}: ${how} applies cleanly and is mutated`, async (t) => {
      await freshNamespace(state, NAMESPACE);
      const applied = await kubectl(state, ['apply', ...applyFlags, '-k', dir]);
      t.equal(applied.code, 0, `${how} succeeds`, { stderr: applied.stderr });

      const sts = await getJson<StatefulSet>(state, ['statefulset', 'mongodb', '-n', NAMESPACE]);
      const mongodb = sts.spec.template.spec.containers.find((c) => c.name === 'mongodb');
      t.ok(hookOf(mongodb).includes(HOOK_MARKER), 'the stored StatefulSet carries the bootstrap hook');
      const claims = (sts.spec.volumeClaimTemplates ?? []).map((c) => c.metadata.name);
      const dataMount = mongodb?.volumeMounts?.find((m) => m.mountPath === '/data/db');
      t.ok(dataMount && claims.includes(dataMount.name), 'a claim template is mounted at /data/db', {
        claims,
        dataMount,
      });
      t.match(sts.metadata.annotations?.['sts-guard.io/injected'] ?? '', 'bootstrap-hook');

      // The StatefulSet controller acts on the stored object: ordinal 0's claim and Pod.
      const claim = `${dataMount?.name}-mongodb-0`;
      await eventually(`PVC ${claim}`, async () =>
        (await kubectl(state, ['get', 'pvc', claim, '-n', NAMESPACE])).code === 0 ? true : undefined,
      );
      const pod = await eventually('Pod mongodb-0', async () => {
        const got = await kubectl(state, ['get', 'pod', 'mongodb-0', '-n', NAMESPACE, '-o', 'json']);
        return got.code === 0 ? (JSON.parse(got.stdout) as { spec: { containers: Container[] } }) : undefined;
      });
      t.ok(
        hookOf(pod.spec.containers.find((c) => c.name === 'mongodb')).includes(HOOK_MARKER),
        "the controller's Pod spec holds the hook",
      );

      await diffExitsZero(t, dir);
      const before = await versions(state);
      const again = await kubectl(state, ['apply', ...applyFlags, '-k', dir]);
      t.equal(again.code, 0, `a second ${how} succeeds`, { stderr: again.stderr });
      t.same(
        await versions(state),
        before,
        'a second apply changes nothing: same resourceVersion and generation',
      );
      await diffExitsZero(t, dir);
    });
  }
}

t.teardown(async () => {
  await kubectl(state, ['delete', 'namespace', NAMESPACE, '--wait=false', '--ignore-not-found']);
});
