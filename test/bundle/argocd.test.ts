import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { type RenderedObject, render } from '../support/kustomize.js';
import { repoRoot } from '../support/repo.js';
import { named, OVERLAYS, ofKind, STACK_NAMESPACE } from './manifests.js';

// The fields of Argo CD's CRDs (argoproj.io/v1alpha1) that these tests read.
interface ApplicationSource {
  repoURL: string;
  targetRevision?: string;
  path: string;
}
interface SyncPolicy {
  automated?: { prune?: boolean; selfHeal?: boolean };
  retry?: { limit?: number; refresh?: boolean };
  syncOptions?: string[];
  managedNamespaceMetadata?: { labels?: Record<string, string> };
}
interface ApplicationSpec {
  project: string;
  source: ApplicationSource;
  destination: { server?: string; name?: string; namespace: string };
  syncPolicy?: SyncPolicy;
  ignoreDifferences?: unknown[];
}
interface Application {
  metadata: RenderedObject['metadata'];
  spec: ApplicationSpec;
}
interface GitGenerator {
  git?: { repoURL: string; directories?: Array<{ path: string; exclude?: boolean }> };
  clusters?: { selector?: { matchLabels?: Record<string, string> } };
}
interface ApplicationSet {
  spec: {
    goTemplate?: boolean;
    generators: Array<{ matrix?: { generators: GitGenerator[] } }>;
    syncPolicy?: { preserveResourcesOnDeletion?: boolean };
    template: { metadata: { name: string; annotations?: Record<string, string> }; spec: ApplicationSpec };
  };
}
interface AppProject {
  spec: {
    sourceRepos: string[];
    destinations: Array<{ server?: string; name?: string; namespace: string }>;
    clusterResourceWhitelist?: Array<{ group: string; kind: string; name?: string }>;
    namespaceResourceWhitelist?: Array<{ group: string; kind: string }>;
  };
}

const objects = await render('kustomize/argocd');
const webhook = named<Application>(objects, 'Application', 'sts-guard');
// A placeholder until forked (docs/gitops.md, step 1); whatever it is, every source must name it.
const REPO_URL = webhook.spec.source.repoURL;
const stackSet = named<ApplicationSet>(objects, 'ApplicationSet', 'grade-submission');
const projects = ofKind<AppProject>(objects, 'AppProject');

const wave = (o: RenderedObject) => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
const exists = (path: string) =>
  access(join(repoRoot, path)).then(
    () => true,
    () => false,
  );
const [gitGenerator, clusterGenerator] = stackSet.spec.generators[0]?.matrix?.generators ?? [];

t.test('kustomize/argocd renders projects, the sts-guard Application and the ApplicationSet', async (t) => {
  t.same(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'AppProject/grade-submission',
    'AppProject/sts-guard',
    'Application/sts-guard',
    'ApplicationSet/grade-submission',
  ]);
  for (const o of objects) {
    t.equal(o.apiVersion, 'argoproj.io/v1alpha1');
    t.equal(o.metadata.namespace, 'argocd');
  }
});

t.test('the webhook is synced (and Healthy) before the databases', async (t) => {
  for (const project of projects) t.ok(wave(project) < wave(webhook), `${project.metadata.name} first`);
  t.ok(wave(webhook) < wave(stackSet), 'sts-guard before the ApplicationSet that creates the databases');
  t.equal(
    webhook.spec.source.path,
    'deploy/overlays/cert-manager',
    'the certificate option that needs nothing outside Git',
  );
  t.equal(webhook.spec.project, 'sts-guard');
});

t.test("the webhook's source is the deploy overlay in this repository", async (t) => {
  const path = webhook.spec.source.path;
  const present = await exists(join(path, 'kustomization.yaml'));
  t.ok(present, `${path}/kustomization.yaml exists`);
  if (present) {
    const kinds = (await render(path)).map((o) => o.kind);
    t.ok(kinds.includes('ValidatingWebhookConfiguration'), 'it renders the webhook configurations');
    t.ok(kinds.includes('Certificate'), 'with a cert-manager Certificate');
  }
});

t.test('the ApplicationSet creates one Application for each overlay directory', async (t) => {
  t.equal(stackSet.spec.goTemplate, true);
  const directories = gitGenerator?.git?.directories ?? [];
  t.same(directories, [{ path: 'kustomize/overlays/*' }]);
  const found = await readdir(join(repoRoot, 'kustomize/overlays'), { withFileTypes: true });
  const overlays = found.filter((d) => d.isDirectory()).map((d) => d.name);
  t.same(overlays.sort(), [...OVERLAYS].sort(), 'the generator finds exactly dev, staging and prod');
  for (const overlay of overlays) {
    t.ok(await exists(`kustomize/overlays/${overlay}/kustomization.yaml`), `${overlay} is a kustomization`);
  }
  t.equal(stackSet.spec.template.spec.source.path, '{{.path.path}}');
  t.equal(stackSet.spec.template.metadata.name, 'grade-submission-{{.path.basename}}');
  // A cluster runs the overlay named by its label; all overlays share one namespace, so never two.
  t.same(clusterGenerator?.clusters?.selector?.matchLabels, {
    'sts-guard.io/environment': '{{.path.basename}}',
  });
  t.same(stackSet.spec.template.spec.destination, { server: '{{.server}}', namespace: STACK_NAMESPACE });
});

t.test('every source is this repository, and its project allows it', async (t) => {
  const projectOf = (name: string) => projects.find((p) => p.metadata.name === name);
  const applications: Array<[string, ApplicationSpec]> = [
    ['sts-guard', webhook.spec],
    ['grade-submission template', stackSet.spec.template.spec],
  ];
  t.match(REPO_URL, /^https:\/\/[^\s]+\.git$/, 'an HTTPS Git URL');
  for (const [label, spec] of applications) {
    t.equal(spec.source.repoURL, REPO_URL, `${label} repoURL`);
    const project = projectOf(spec.project);
    t.ok(project, `${label}: project ${spec.project} is in the render`);
    t.ok(project?.spec.sourceRepos.includes(spec.source.repoURL), `${label}: project allows the repo`);
    t.ok(
      project?.spec.destinations.some((d) => d.namespace === spec.destination.namespace),
      `${label}: project allows namespace ${spec.destination.namespace}`,
    );
  }
  t.equal(gitGenerator?.git?.repoURL, REPO_URL);
  const root = parse(
    await readFile(join(repoRoot, 'kustomize/argocd/bootstrap/root-application.yaml'), 'utf8'),
  );
  t.same(root.spec.source, { repoURL: REPO_URL, targetRevision: 'HEAD', path: 'kustomize/argocd' });
});

t.test(
  'the stack project may sync every kind the overlays render, and no webhook configuration',
  async (t) => {
    const project = named<AppProject>(objects, 'AppProject', 'grade-submission');
    const allowed = new Set(
      (project.spec.namespaceResourceWhitelist ?? []).map((r) => `${r.group}/${r.kind}`),
    );
    for (const overlay of OVERLAYS) {
      for (const o of await render(`kustomize/overlays/${overlay}`)) {
        const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
        t.ok(allowed.has(`${group}/${o.kind}`), `${overlay}: ${o.kind} is allowed`);
      }
    }
    // Only the namespace CreateNamespace makes; nothing cluster-wide, so the stack cannot turn sts-guard off.
    t.same(project.spec.clusterResourceWhitelist, [{ group: '', kind: 'Namespace', name: STACK_NAMESPACE }]);
  },
);

t.test('sync options: CreateNamespace, server-side apply and diff, and no ignoreDifferences', async (t) => {
  const stack = stackSet.spec.template;
  for (const [label, spec, annotations] of [
    ['sts-guard', webhook.spec, webhook.metadata.annotations],
    ['grade-submission', stack.spec, stack.metadata.annotations],
  ] as const) {
    t.ok(spec.syncPolicy?.syncOptions?.includes('CreateNamespace=true'), `${label} CreateNamespace`);
    t.ok(spec.syncPolicy?.syncOptions?.includes('ServerSideApply=true'), `${label} ServerSideApply`);
    t.same(spec.syncPolicy?.automated, { prune: true, selfHeal: true }, `${label} automated`);
    // sts-guard's mutation is part of what the API server stores, so it is expected, not drift.
    t.equal(
      annotations?.['argocd.argoproj.io/compare-options'],
      'ServerSideDiff=true,IncludeMutationWebhook=true',
      `${label} compares with the API server's answer`,
    );
    t.equal(spec.ignoreDifferences, undefined, `${label} ignores no differences`);
    // A sync sts-guard refuses retries; with refresh each retry takes the newest commit, so a
    // revert ends it at the next attempt instead of after the limit (test/e2e/argocd/).
    t.equal(spec.syncPolicy?.retry?.refresh, true, `${label} retries with the newest commit`);
  }
  t.notOk(
    JSON.stringify(stack.spec.syncPolicy?.managedNamespaceMetadata).includes('sts-guard.io/exempt'),
    'the grade-submission namespace is never exempted from sts-guard',
  );
  t.equal(
    stackSet.spec.syncPolicy?.preserveResourcesOnDeletion,
    true,
    'deleting the ApplicationSet keeps the stack',
  );
});
