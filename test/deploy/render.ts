import { fileURLToPath } from 'node:url';
import type {
  KubernetesObject,
  V1LabelSelector,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1ValidatingWebhook,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { renderKustomization } from '../../src/render/kustomize.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const deployDir = (path: string) => fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));

/** The objects a kustomization renders to, with real kustomize (or `kubectl kustomize`). */
export class Rendered {
  constructor(readonly objects: KubernetesObject[]) {}

  static async of(dir: string): Promise<Rendered> {
    const yaml = await renderKustomization(dir);
    const objects = parseAllDocuments(yaml).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${dir} rendered invalid YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as KubernetesObject;
    });
    return new Rendered(objects.filter((o) => o !== null));
  }

  all<T extends KubernetesObject>(kind: string): T[] {
    return this.objects.filter((o) => o.kind === kind) as T[];
  }

  /** The one object of `kind` named `name`; throws naming what was rendered when it is missing. */
  one<T extends KubernetesObject>(kind: string, name = 'sts-guard'): T {
    const found = this.objects.filter((o) => o.kind === kind && o.metadata?.name === name);
    if (found.length !== 1) {
      const have = this.objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ');
      throw new Error(`expected one ${kind}/${name}, found ${found.length} among: ${have}`);
    }
    return found[0] as T;
  }

  mutatingWebhooks(): V1MutatingWebhook[] {
    return this.one<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration').webhooks ?? [];
  }

  validatingWebhooks(): V1ValidatingWebhook[] {
    return this.one<V1ValidatingWebhookConfiguration>('ValidatingWebhookConfiguration').webhooks ?? [];
  }

  webhooks(): Array<V1MutatingWebhook | V1ValidatingWebhook> {
    return [...this.mutatingWebhooks(), ...this.validatingWebhooks()];
  }
}

/** Whether a label selector selects an object with `labels`, as the API server decides it. */
export function selects(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key] ?? '';
    const ok =
      operator === 'In'
        ? has && values.includes(value)
        : operator === 'NotIn'
          ? !has || !values.includes(value)
          : operator === 'Exists'
            ? has
            : operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

/** Labels the API server puts on a namespace (kubernetes.io/metadata.name), plus `extra`. */
export const namespaceLabels = (name: string, extra: Record<string, string> = {}) => ({
  'kubernetes.io/metadata.name': name,
  ...extra,
});
