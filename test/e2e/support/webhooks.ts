import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from './sts-guard.js';

const run = promisify(execFile);

/**
 * deploy/'s webhook configurations, pointed at this sts-guard: the same files through the
 * url-registration component (clientConfig.url) plus the caBundle of the certificate it serves.
 */
export async function renderWebhooks(
  binDir: string,
  dir: string,
  host: string,
  caPem: string,
): Promise<string> {
  const kustomization = join(dir, 'webhooks');
  await mkdir(kustomization, { recursive: true });
  const from = (path: string) => relative(kustomization, join(repoRoot, path));
  await writeFile(
    join(kustomization, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [from('deploy/webhooks'), 'endpoint.yaml'],
      components: [from('deploy/serverless/components/url-registration')],
    }),
  );
  await writeFile(
    join(kustomization, 'endpoint.yaml'),
    stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'sts-guard-endpoint', annotations: { 'config.kubernetes.io/local-config': 'true' } },
      data: { host },
    }),
  );
  const { stdout } = await run(join(binDir, 'kustomize'), ['build', kustomization]);
  const caBundle = Buffer.from(caPem).toString('base64');
  const objects = parseAllDocuments(stdout).map(
    (d) => d.toJS() as KubernetesObject & { webhooks?: unknown[] },
  );
  for (const object of objects) {
    for (const webhook of (object.webhooks ?? []) as Array<{ clientConfig: Record<string, unknown> }>) {
      webhook.clientConfig.caBundle = caBundle;
    }
  }
  return objects.map((o) => stringify(o)).join('---\n');
}
