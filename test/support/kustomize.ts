import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { renderKustomization } from '../../src/render/kustomize.js';
import { repoPath } from './repo.js';

/** A rendered object with the fields every Kubernetes object carries. */
export type RenderedObject = KubernetesObject & {
  apiVersion: string;
  kind: string;
  metadata: NonNullable<KubernetesObject['metadata']> & { name: string };
};

/**
 * Renders the kustomization in `dir` (relative to the repository root, or absolute) with the real
 * kustomize (or `kubectl kustomize`) and parses every document; a YAML error or an object without
 * apiVersion, kind or name fails the render.
 */
export async function render(dir: string): Promise<RenderedObject[]> {
  const yaml = await renderKustomization(repoPath(dir));
  const objects: RenderedObject[] = [];
  for (const doc of parseAllDocuments(yaml)) {
    if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as Partial<RenderedObject> | null;
    if (value === null) continue;
    if (!value.apiVersion || !value.kind || !value.metadata?.name) {
      throw new Error(
        `${dir}: an object without apiVersion, kind or metadata.name: ${JSON.stringify(value)}`,
      );
    }
    objects.push(value as RenderedObject);
  }
  return objects;
}
