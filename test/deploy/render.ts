import type {
  KubernetesObject,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1ValidatingWebhook,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { render } from '../support/kustomize.js';

/** The objects a kustomization renders to, with real kustomize (or `kubectl kustomize`). */
export class Rendered {
  constructor(readonly objects: KubernetesObject[]) {}

  /** Renders `dir`, relative to the repository root or absolute. */
  static async of(dir: string): Promise<Rendered> {
    return new Rendered(await render(dir));
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

/** Labels the API server puts on a namespace (kubernetes.io/metadata.name), plus `extra`. */
export const namespaceLabels = (name: string, extra: Record<string, string> = {}) => ({
  'kubernetes.io/metadata.name': name,
  ...extra,
});
