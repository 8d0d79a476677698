import { readdirSync } from 'node:fs';
import t from 'tap';
import { repoPath } from '../support/repo.js';
import { eventually } from '../support/wait.js';
import { type E2eState, freshNamespace, getJson, kubectl, loadState } from './support/env.js';

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

/**
 * What `kubectl diff -k` and `kubectl diff --server-side -k` report right after an apply: exit
 * code plus the changed lines, without the values that differ between any two runs.
 */
async function drift(
  state: E2eState,
  dir: string,
): Promise<Record<string, { code: number; lines: string[] }>> {
  const result: Record<string, { code: number; lines: string[] }> = {};
  for (const flags of [[], ['--server-side']]) {
    const diff = await kubectl(state, ['diff', ...flags, '-k', dir]);
    const lines = `${diff.stdout}\n${diff.stderr}`
      .split('\n')
      .filter((l) => /^[-+](?![-+]{2} )/.test(l) || l.startsWith('Error from server'))
      .map((l) => l.replace(/(resourceVersion|creationTimestamp|uid|time): .*/, '$1: <varies>'))
      .sort();
    result[`kubectl diff ${flags.join(' ')} -k`.replace('  ', ' ')] = { code: diff.code, lines };
  }
  return result;
}

/** Applies `dir` into a fresh grade-submission namespace; `exempt` labels it so sts-guard is never called. */
async function applyFresh(state: E2eState, dir: string, applyFlags: string[], exempt: boolean) {
  await freshNamespace(state, NAMESPACE, exempt ? { 'sts-guard.io/exempt': 'true' } : {});
  return kubectl(state, ['apply', ...applyFlags, '-k', dir]);
}

for (const overlay of overlays) {
  const dir = repoPath(`kustomize/overlays/${overlay}`);
  for (const applyFlags of [[], ['--server-side']]) {
    const how = `kubectl apply ${applyFlags.join(' ')} -k`.replace('  ', ' ');
    t.test(`overlay ${overlay}: ${how} applies cleanly and is mutated`, async (t) => {
      // The control: the same apply with sts-guard never called (namespace exempt). Whatever
      // drift kubectl and the API server show there on their own is not sts-guard's.
      const controlApplied = await applyFresh(state, dir, applyFlags, true);
      t.equal(controlApplied.code, 0, `${how} succeeds without sts-guard`, { stderr: controlApplied.stderr });
      const control = await drift(state, dir);

      const applied = await applyFresh(state, dir, applyFlags, false);
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

      const checkDrift = async (when: string) => {
        const found = await drift(state, dir);
        t.same(
          found,
          control,
          `${when}: sts-guard adds no drift to either diff (same as with sts-guard exempt)`,
        );
        for (const [command, { code, lines }] of Object.entries(found)) {
          // A server-side diff after a client-side apply always reports kubectl's own bookkeeping
          // (the API server rewrites last-applied-configuration), webhook or not: the control shows it.
          const mixed = applyFlags.length === 0 && command.includes('--server-side');
          if (!mixed) t.equal(code, 0, `${when}: ${command} exits 0`, { lines });
        }
      };
      await checkDrift('right after the apply');
      const before = await versions(state);
      const again = await kubectl(state, ['apply', ...applyFlags, '-k', dir]);
      t.equal(again.code, 0, `a second ${how} succeeds`, { stderr: again.stderr });
      t.same(
        await versions(state),
        before,
        'a second apply changes nothing: same resourceVersion and generation',
      );
      await checkDrift('after a second apply');
    });
  }
}

t.teardown(async () => {
  await kubectl(state, ['delete', 'namespace', NAMESPACE, '--wait=false', '--ignore-not-found']);
});
