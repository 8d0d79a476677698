import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';

const run = promisify(execFile);

/** The repository the bundle names until a fork points it elsewhere (docs/gitops.md, step 1). */
export const PLACEHOLDER_REPO = 'https://github.com/example/sts-guard.git';

interface Manifest {
  kind: string;
  metadata: { name: string };
}

/**
 * The repository's own kustomize/argocd as the local repository's working clone holds it (the
 * tested commit, unless a story committed on top), rendered by the real kustomize, with the one render step
 * docs/gitops.md's step 1 asks of a fork (every placeholder repository URL replaced by `repoUrl`),
 * and without the `sts-guard` Application: it installs the webhook's Deployment from
 * deploy/overlays/cert-manager, which needs cert-manager and a kubelet; here sts-guard runs with
 * `npm start` and is registered by URL instead.
 */
export async function renderArgoCdBundle(
  binDir: string,
  repo: { url: string; work: string },
  options: { keepWebhookApplication?: boolean } = {},
): Promise<{ yaml: string; kinds: string[] }> {
  const { stdout } = await run(join(binDir, 'kustomize'), ['build', join(repo.work, 'kustomize/argocd')]);
  const manifests = parseAllDocuments(stdout.split(PLACEHOLDER_REPO).join(repo.url))
    .map((d) => d.toJS() as Manifest)
    .filter(
      (m) => options.keepWebhookApplication || !(m.kind === 'Application' && m.metadata.name === 'sts-guard'),
    );
  return {
    yaml: manifests.map((m) => stringify(m)).join('---\n'),
    kinds: manifests.map((m) => `${m.kind}/${m.metadata.name}`),
  };
}
