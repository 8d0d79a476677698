/**
 * The one story driven by the machine's own kubectl (1.33 here, four minors behind the 1.37 API
 * server: outside Kubernetes' supported skew of one). Every other story uses the kubectl built with
 * the control plane. This checks that what users with an older kubectl meet still works: the
 * denial and its fix reach them, an overlay applies and diffs clean server-side, a scale is refused.
 */
import t from 'tap';
import { repoPath } from '../support/repo.js';
import { type E2eState, freshNamespace, kubectl, kubectlOk, loadState, scenario } from './support/env.js';

const suite = loadState();
const ns = 'kubectl-skew';

interface Version {
  gitVersion: string;
  minor: string;
}

t.test("the machine's kubectl, outside the supported skew", async (t) => {
  if (!suite.machineKubectl) {
    t.fail('no kubectl on PATH besides the built one: .ci/run installs Debian kubernetes-client');
    return;
  }
  const old: E2eState = { ...suite, kubectl: suite.machineKubectl };
  // Not `kubectl version`: it exits 1 on the API server's unstamped gitVersion (v0.0.0-master+…),
  // which a module build reports; /version's major and minor are right.
  const client = (
    JSON.parse(await kubectlOk(old, ['version', '--client', '-o', 'json'])) as { clientVersion: Version }
  ).clientVersion;
  const server = JSON.parse(await kubectlOk(old, ['get', '--raw', '/version'])) as Version;
  const minor = (v: Version) => Number.parseInt(v.minor, 10);
  t.equal(minor(server), 37, 'the API server is 1.37');
  t.comment(
    `machine kubectl ${client.gitVersion} against API server 1.${minor(server)}: ` +
      `${minor(server) - minor(client)} minor versions apart (Kubernetes supports one)`,
  );

  t.test('a denial reaches it whole, with the fix', async (t) => {
    await freshNamespace(old, ns);
    const applied = await kubectl(old, ['apply', '-n', ns, '-f', scenario('seed-without-replset')]);
    t.not(applied.code, 0, 'kubectl apply fails');
    t.match(applied.stderr, 'admission webhook "validate.sts-guard.io" denied the request');
    t.match(
      applied.stderr,
      'Fix: set the args of container "mongodb" to: args: ["--replSet","rs0","--bind_ip_all"]',
    );
  });

  t.test('kubectl scale through statefulsets/scale is refused', async (t) => {
    await freshNamespace(old, ns);
    await kubectlOk(old, ['apply', '-n', ns, '-f', scenario('standalone-without-replset')]);
    const scaled = await kubectl(old, [
      'scale',
      'statefulset',
      'mongodb-standalone',
      '-n',
      ns,
      '--replicas=3',
    ]);
    t.not(scaled.code, 0, 'kubectl scale fails');
    t.match(scaled.stderr, '[replica-set] container "mongodb" starts MongoDB without --replSet');
  });

  t.test('an overlay applies server-side and then diffs clean', async (t) => {
    await freshNamespace(old, 'grade-submission');
    const dir = repoPath('kustomize/overlays/staging');
    const applied = await kubectl(old, ['apply', '--server-side', '-k', dir]);
    t.equal(applied.code, 0, 'kubectl apply --server-side -k succeeds', { stderr: applied.stderr });
    const diff = await kubectl(old, ['diff', '--server-side', '-k', dir]);
    t.equal(diff.code, 0, 'kubectl diff --server-side -k exits 0', {
      stdout: diff.stdout,
      stderr: diff.stderr,
    });
  });
});

t.teardown(async () => {
  for (const name of [ns, 'grade-submission']) {
    await kubectl(suite, ['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
  }
});
