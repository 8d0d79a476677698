/**
 * sts-guard's own webhook configurations under Argo CD, the objects argo-cd #25447 reports
 * OutOfSync even with ServerSideDiff=true,IncludeMutationWebhook=true (there, Istio's controller
 * rewrites failurePolicy after install). Here an Application with exactly the `sts-guard`
 * Application's project, compare options and sync policy takes over the registration this suite
 * made: deploy/webhooks through the url-registration component with the serving CA as caBundle,
 * committed to the local repository. It must sync, stay Synced, and the webhooks keep working.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { freshNamespace, kubectl, kubectlOk, scenario } from '../support/env.js';
import { endpointConfigMap } from '../support/setup.js';
import { renderArgoCdBundle } from './support/bundle.js';
import { ARGOCD_NAMESPACE } from './support/components.js';
import {
  type Application,
  getApplication,
  hardRefresh,
  loadArgoCdState,
  recordFigure,
  syncedAt,
  waitForApplication,
} from './support/env.js';
import { git, resetToTested } from './support/git.js';

const state = loadArgoCdState();
const repo = state.argocd.repo;
const NAME = 'sts-guard-webhooks';
const PATH = 'e2e/sts-guard-webhooks';
const REFRESHES = 4;

t.before(async () => {
  await resetToTested(repo);
  // The registration the suite applied (renderWebhooks in support/setup.ts), as a kustomization in Git.
  const dir = join(repo.work, PATH);
  await mkdir(dir, { recursive: true });
  const caBundle = Buffer.from(await readFile(state.stsGuard.caFile, 'utf8')).toString('base64');
  const addCa = (count: number) =>
    Array.from({ length: count }, (_, i) => ({
      op: 'add',
      path: `/webhooks/${i}/clientConfig/caBundle`,
      value: caBundle,
    }));
  await writeFile(
    join(dir, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['../../deploy/webhooks', 'endpoint.yaml'],
      components: ['../../deploy/serverless/components/url-registration'],
      patches: [
        { target: { kind: 'MutatingWebhookConfiguration', name: 'sts-guard' }, patch: stringify(addCa(1)) },
        { target: { kind: 'ValidatingWebhookConfiguration', name: 'sts-guard' }, patch: stringify(addCa(2)) },
      ],
    }),
  );
  await writeFile(join(dir, 'endpoint.yaml'), endpointConfigMap(`127.0.0.1:${state.stsGuardPort}`));
  await git(repo.work, ['add', PATH]);
  await git(repo.work, ['commit', '--quiet', '-m', "sts-guard's webhook registration, for Argo CD"]);
  await git(repo.work, ['push', '--quiet', 'origin', 'HEAD:main']);
});

t.test("sts-guard's webhook configurations synced by Argo CD stay Synced (argo-cd #25447)", async (t) => {
  const revision = await git(repo.work, ['rev-parse', 'HEAD']);
  // The bundle's own sts-guard Application, re-pointed at the registration above: same project,
  // compare options, sync options, retry.
  const bundle = await renderArgoCdBundle(state.binDir, repo, { keepWebhookApplication: true });
  const webhookApp = parseAllDocuments(bundle.yaml)
    .map((d) => d.toJS() as Application & { apiVersion: string; kind: string })
    .find((o) => o.kind === 'Application' && o.metadata.name === 'sts-guard');
  if (!webhookApp) throw new Error('kustomize/argocd has no sts-guard Application');
  webhookApp.metadata = { ...webhookApp.metadata, name: NAME };
  webhookApp.spec.source = { ...webhookApp.spec.source, path: PATH };
  await kubectlOk(state, ['apply', '-n', ARGOCD_NAMESPACE, '-f', '-'], stringify(webhookApp));

  const synced = await waitForApplication(state, NAME, 'Synced', syncedAt(revision));
  t.equal(
    synced.metadata.annotations?.['argocd.argoproj.io/compare-options'],
    'ServerSideDiff=true,IncludeMutationWebhook=true',
  );
  const kinds = (synced.status?.resources ?? []).map((r) => `${r.kind}/${r.name} ${r.status}`).sort();
  t.same(
    kinds,
    ['MutatingWebhookConfiguration/sts-guard Synced', 'ValidatingWebhookConfiguration/sts-guard Synced'],
    'both webhook configurations are Synced',
  );

  const seen = new Set<string>();
  let last: Application | undefined;
  for (let i = 0; i < REFRESHES; i++) {
    last = await hardRefresh(state, NAME);
    for (const r of last.status?.resources ?? []) seen.add(`${r.kind}/${r.name} ${r.status}`);
    seen.add(`Application ${last.status?.sync?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    last = await getApplication(state, NAME);
    seen.add(`Application ${last?.status?.sync?.status}`);
  }
  t.same(
    [...seen].sort(),
    [
      'Application Synced',
      'MutatingWebhookConfiguration/sts-guard Synced',
      'ValidatingWebhookConfiguration/sts-guard Synced',
    ],
    `Synced at every one of ${REFRESHES} hard refreshes`,
  );
  t.equal(
    last?.status?.operationState?.startedAt,
    synced.status?.operationState?.startedAt,
    'no further sync ran',
  );
  recordFigure(state, {
    figure: 'webhook configurations under Argo CD',
    refreshes: REFRESHES,
    status: 'Synced',
  });

  // The registration Argo CD now manages still sends reviews to sts-guard.
  const ns = 'argocd-webhooks-check';
  await freshNamespace(state, ns);
  const applied = await kubectl(state, ['apply', '-n', ns, '-f', scenario('seed-without-replset')]);
  t.match(
    applied.stderr,
    'admission webhook "validate.sts-guard.io" denied the request',
    'sts-guard still answers',
  );
  await kubectl(state, ['delete', 'namespace', ns, '--wait=false']);
});

t.teardown(async () => {
  // No finalizer: deleting the Application leaves the configurations in place.
  await kubectl(state, [
    'delete',
    'application',
    NAME,
    '-n',
    ARGOCD_NAMESPACE,
    '--ignore-not-found',
    '--wait=true',
  ]);
  await resetToTested(repo);
});
