import type { V1Deployment, V1PodTemplateSpec, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { RenderedObject } from '../support/kustomize.js';
import { serviceSelectorSelects } from '../support/selectors.js';

/** The overlays Argo CD syncs, and the namespace every one of them deploys to. */
export const OVERLAYS = ['dev', 'staging', 'prod'] as const;
export type Overlay = (typeof OVERLAYS)[number];
export const STACK_NAMESPACE = 'grade-submission';

export const ofKind = <T>(objects: RenderedObject[], kind: string): Array<T & RenderedObject> =>
  objects.filter((o) => o.kind === kind) as Array<T & RenderedObject>;

export function named<T>(objects: RenderedObject[], kind: string, name: string): T & RenderedObject {
  const found = ofKind<T>(objects, kind).find((o) => o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} "${name}" in the render`);
  return found;
}

export type Workload = (V1Deployment | V1StatefulSet) & RenderedObject;

export const workloads = (objects: RenderedObject[]): Workload[] => [
  ...ofKind<V1Deployment>(objects, 'Deployment'),
  ...ofKind<V1StatefulSet>(objects, 'StatefulSet'),
];

export const podTemplate = (workload: Workload): V1PodTemplateSpec => {
  const template = workload.spec?.template;
  if (!template) throw new Error(`${workload.kind} "${workload.metadata.name}" has no pod template`);
  return template;
};

/** The workloads whose pods a Service's selector matches. */
export const backends = (service: V1Service, objects: RenderedObject[]): Workload[] =>
  workloads(objects).filter((w) =>
    serviceSelectorSelects(service.spec?.selector, podTemplate(w).metadata?.labels),
  );

/** The container port a Service's targetPort resolves to in a pod template (by name or number). */
export function resolveTargetPort(
  template: V1PodTemplateSpec,
  targetPort: number | string | undefined,
  servicePort: number,
): number | undefined {
  const wanted = targetPort ?? servicePort;
  for (const container of template.spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      if (typeof wanted === 'number' ? port.containerPort === wanted : port.name === wanted) {
        return port.containerPort;
      }
    }
  }
  return undefined;
}

const BINARY_SUFFIXES: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL_SUFFIXES: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, m: 1e-3 };

/** A Kubernetes resource quantity ("512Mi", "20Gi", "250m", "1") as a plain number. */
export function quantity(value: string | number | undefined): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const match = /^([0-9.]+)([A-Za-z]*)$/.exec(value);
  const factor = match ? (BINARY_SUFFIXES[match[2] ?? ''] ?? DECIMAL_SUFFIXES[match[2] ?? '']) : undefined;
  if (!match || factor === undefined) throw new Error(`not a quantity: ${value}`);
  return Number(match[1]) * factor;
}
