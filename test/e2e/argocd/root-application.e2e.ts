/**
 * docs/gitops.md steps 1, 2 and 4 with Argo CD itself: a fork pointed at its own repository with
 * the doc's command, the root Application applied as written, and the argocd-cm health check for
 * Applications that step 2 says makes the sync waves wait for the webhook.
 *
 * The `sts-guard` Application (wave -1) cannot become Healthy here: its Deployment needs a kubelet
 * and its certificate cert-manager. That is what makes the doc's claim visible: with the health
 * check the root sync stops at wave -1 and waits; without it the root sync runs through wave 1.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { eventually, kubectl, kubectlOk, repoPath } from '../support/env.js';
import { ARGOCD_NAMESPACE } from './support/components.js';
import { argocdCmSnippets } from './support/docs.js';
import { type Application, getApplication, loadArgoCdState, waitForApplication } from './support/env.js';
import { git, resetToTested } from './support/git.js';

const run = promisify(execFile);
const state = loadArgoCdState();
const repo = state.argocd.repo;
const ROOT = 'grade-submission-root';

/** Step 1's command from docs/gitops.md, run in the clone with YOU's URL replaced by the local one. */
function forkCommand(): string {
  const doc = readFileSync(repoPath('docs/gitops.md'), 'utf8');
  const block = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? '')
    .find((b) => b.includes("grep -rl 'github.com/example/sts-guard.git'"));
  if (!block) throw new Error("docs/gitops.md no longer shows step 1's grep | sed command");
  const command = block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('grep -rl'));
  if (!command) throw new Error("step 1's block has no grep -rl line");
  return command.replace('https://github.com/YOU/sts-guard.git', repo.url);
}

const apply = (file: string) => kubectlOk(state, ['apply', '-n', ARGOCD_NAMESPACE, '-f', file]);
const remove = async (name: string) => {
  await kubectl(state, [
    'delete',
    'application',
    name,
    '-n',
    ARGOCD_NAMESPACE,
    '--ignore-not-found',
    '--wait=true',
  ]);
};
const entry = (app: Application, kind: string, name: string) =>
  app.status?.resources?.find((r) => r.kind === kind && r.name === name);

t.before(async () => {
  await resetToTested(repo);
  await run('bash', ['-c', forkCommand()], { cwd: repo.work });
  const changed = await git(repo.work, ['status', '--porcelain']);
  t.ok(changed.includes('kustomize/argocd/'), "step 1's command rewrote kustomize/argocd");
  await git(repo.work, ['commit', '--quiet', '-am', 'point the bundle at this fork (docs/gitops.md step 1)']);
  await git(repo.work, ['push', '--quiet', 'origin', 'HEAD:main']);
});

t.test('without the health check, the root sync does not wait for the sts-guard Application', async (t) => {
  await apply(join(repo.work, 'kustomize/argocd/bootstrap/root-application.yaml'));
  const root = await waitForApplication(
    state,
    ROOT,
    'its sync to finish',
    (a) => a.status?.operationState?.phase === 'Succeeded',
    180_000,
  );
  const webhookApp = await getApplication(state, 'sts-guard');
  t.ok(webhookApp, 'wave -1 created the sts-guard Application');
  t.not(
    webhookApp?.status?.health?.status,
    'Healthy',
    'which is not Healthy here (no kubelet, no cert-manager)',
  );
  const synced = (root.status?.operationState?.syncResult?.resources ?? []).map((r) => `${r.kind}/${r.name}`);
  t.ok(
    synced.includes('ApplicationSet/grade-submission'),
    'wave 1 (the ApplicationSet) was synced all the same',
  );
  t.notOk(
    entry(root, 'Application', 'sts-guard')?.health?.status,
    'Argo CD assessed no health for the Application',
  );
  await remove(ROOT);
  await remove('sts-guard');
});

t.test(
  "with step 2's argocd-cm snippet, the root sync waits at wave -1 for the sts-guard Application",
  async (t) => {
    const snippets = argocdCmSnippets();
    t.same(
      Object.keys(snippets),
      ['resource.customizations.health.argoproj.io_Application'],
      'the one snippet the doc asks for',
    );
    await kubectlOk(state, [
      'patch',
      'configmap',
      'argocd-cm',
      '-n',
      ARGOCD_NAMESPACE,
      '--type=merge',
      '-p',
      JSON.stringify({ data: snippets }),
    ]);
    await apply(join(repo.work, 'kustomize/argocd/bootstrap/root-application.yaml'));
    const waiting = await waitForApplication(
      state,
      ROOT,
      'its sync to wait for the sts-guard Application',
      (a) =>
        a.status?.operationState?.phase === 'Running' &&
        (a.status.operationState.message ?? '').includes(
          'waiting for healthy state of argoproj.io/Application/sts-guard',
        ),
      180_000,
    );
    t.pass(`root: ${waiting.status?.operationState?.message}`);
    const webhookApp = await eventually('the sts-guard Application to report a health', async () => {
      const a = await getApplication(state, 'sts-guard');
      return a?.status?.health?.status ? a : undefined;
    });
    const root = await waitForApplication(state, ROOT, "the child's health in its resources", (a) =>
      Boolean(entry(a, 'Application', 'sts-guard')?.health?.status),
    );
    t.equal(
      entry(root, 'Application', 'sts-guard')?.health?.status,
      webhookApp.status?.health?.status,
      "the snippet hands the child Application's own health to the root",
    );
    const synced = (root.status?.operationState?.syncResult?.resources ?? []).map(
      (r) => `${r.kind}/${r.name}`,
    );
    t.notOk(
      synced.includes('ApplicationSet/grade-submission'),
      'wave 1 (the ApplicationSet) has not been synced',
    );
    t.equal(root.status?.operationState?.phase, 'Running', 'the root sync is still waiting');
  },
);

t.teardown(async () => {
  await remove(ROOT);
  await remove('sts-guard');
  await kubectl(state, [
    'patch',
    'configmap',
    'argocd-cm',
    '-n',
    ARGOCD_NAMESPACE,
    '--type=json',
    '-p',
    JSON.stringify([{ op: 'remove', path: '/data/resource.customizations.health.argoproj.io_Application' }]),
  ]);
  await resetToTested(repo);
});
