/**
 * docs/gitops.md steps 1, 2 and 4 with Argo CD itself: a fork pointed at its own repository with
 * the doc's command, the root Application applied as written, and step 2's argocd-cm health check
 * for Applications, which the doc says makes the sync waves wait for the webhook.
 *
 * The root syncs the `sts-guard` Application (wave -1) as the bundle ships it
 * (deploy/overlays/cert-manager). For it to sync here, cert-manager's Certificate and Issuer CRDs
 * are installed (no cert-manager runs) and the suite's own URL registration of the webhook is set
 * aside: Argo CD cannot merge two configurations of one name, one by URL and one by Service (its
 * comparison fails, and Argo CD 3.6.2 then reports that Application Healthy). Synced, its
 * Deployment never becomes Available (no kubelet) and its Certificates never Ready, so it stays
 * Progressing: what a real one shows until the webhook runs. The URL registration is restored,
 * and checked, at the end.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { repoPath } from '../../support/repo.js';
import { freshNamespace, kubectl, kubectlOk, scenario } from '../support/env.js';
import { ARGOCD_NAMESPACE } from './support/components.js';
import { argocdCmSnippets } from './support/docs.js';
import { type Application, getApplication, loadArgoCdState, waitForApplication } from './support/env.js';
import { git, resetToTested } from './support/git.js';

const run = promisify(execFile);
const state = loadArgoCdState();
const repo = state.argocd.repo;
const ROOT = 'grade-submission-root';
const WAITING = 'waiting for healthy state of argoproj.io/Application/sts-guard';
/** How long the root must keep waiting at wave -1 for the story to call it waiting. */
const HOLD_SECONDS = 45;

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

const webhooks = join(state.dir, 'webhooks.yaml');
const applyRoot = () =>
  kubectlOk(state, [
    'apply',
    '-n',
    ARGOCD_NAMESPACE,
    '-f',
    join(repo.work, 'kustomize/argocd/bootstrap/root-application.yaml'),
  ]);
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
const syncedKinds = (app: Application | undefined) =>
  (app?.status?.operationState?.syncResult?.resources ?? []).map((r) => `${r.kind}/${r.name}`);
/** The controller's own account of the root's sync: its operation-state messages, in order. */
const rootMessages = () =>
  readFileSync(state.argocd.logs['argocd-application-controller'] ?? '', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`application=${ROOT} `) && l.includes('Updating operation state'));

t.before(async () => {
  await resetToTested(repo);
  await run('bash', ['-c', forkCommand()], { cwd: repo.work });
  const changed = await git(repo.work, ['status', '--porcelain']);
  if (!changed.includes('kustomize/argocd/'))
    throw new Error("step 1's command changed nothing in kustomize/argocd");
  await git(repo.work, ['commit', '--quiet', '-am', 'point the bundle at this fork (docs/gitops.md step 1)']);
  await git(repo.work, ['push', '--quiet', 'origin', 'HEAD:main']);
  const crds = join(state.argocd.build, 'cert-manager-crds');
  await kubectlOk(state, ['apply', '--server-side', '-f', crds]);
  await kubectlOk(state, ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  await kubectlOk(state, ['delete', '-f', webhooks]);
});

t.test(
  'without the health check, the root sync runs through wave 1 while sts-guard is not Healthy',
  async (t) => {
    await applyRoot();
    const root = await waitForApplication(
      state,
      ROOT,
      'its sync to finish',
      (a) => a.status?.operationState?.phase === 'Succeeded',
    );
    const child = await getApplication(state, 'sts-guard');
    t.ok(child, 'wave -1 created the sts-guard Application');
    t.not(child?.status?.health?.status, 'Healthy', `which is ${child?.status?.health?.status}, not Healthy`);
    t.ok(
      syncedKinds(root).includes('ApplicationSet/grade-submission'),
      'wave 1 (the ApplicationSet) was synced all the same',
    );
    await remove(ROOT);
    await remove('sts-guard');
  },
);

t.test(
  "with step 2's argocd-cm snippet, the root sync waits at wave -1 for the sts-guard Application",
  async (t) => {
    const snippets = argocdCmSnippets();
    t.same(
      Object.keys(snippets),
      ['resource.customizations.health.argoproj.io_Application'],
      'the one snippet the doc asks for, as written',
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
    const before = rootMessages().length;
    await applyRoot();
    await waitForApplication(state, ROOT, 'its sync to reach wave -1', (a) =>
      (a.status?.operationState?.message ?? '').includes(WAITING),
    );
    await sleep(HOLD_SECONDS * 1000);
    const root = await getApplication(state, ROOT);
    const child = await getApplication(state, 'sts-guard');
    t.equal(
      root?.status?.operationState?.phase,
      'Running',
      `after ${HOLD_SECONDS} s the root sync is still running`,
    );
    t.match(root?.status?.operationState?.message ?? '', WAITING, 'waiting for the sts-guard Application');
    t.notOk(
      syncedKinds(root).includes('ApplicationSet/grade-submission'),
      'wave 1 (the ApplicationSet) has not been synced',
    );
    t.not(
      child?.status?.health?.status,
      'Healthy',
      `the sts-guard Application is ${child?.status?.health?.status}`,
    );
    t.ok(
      rootMessages()
        .slice(before)
        .every((l) => !l.includes("-> 'successfully synced")),
      "the controller's log holds no finished root sync",
    );
  },
);

/** The sts-guard Application replaced the registration with one by Service: back to the suite's. */
async function restoreRegistration() {
  await remove(ROOT);
  await remove('sts-guard');
  await kubectl(state, ['delete', '-f', webhooks, '--ignore-not-found']);
  await kubectl(state, ['apply', '-f', webhooks]);
}

t.test("sts-guard's URL registration is restored and answers", async (t) => {
  await restoreRegistration();
  const ns = 'argocd-root-check';
  await freshNamespace(state, ns);
  const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('seed-without-replset')]);
  t.match(applied.stderr, 'admission webhook "validate.sts-guard.io" denied the request');
  await kubectl(state, ['delete', 'namespace', ns, '--wait=false']);
});

t.teardown(async () => {
  await restoreRegistration();
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
