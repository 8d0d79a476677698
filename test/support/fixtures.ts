import { randomUUID } from 'node:crypto';
import type { V1Container, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { AdmissionRequest, AdmissionReview } from '../../src/admission/types.js';
import type { MutationLookups, Operation, PolicySettings } from '../../src/policy/index.js';

/** Policy settings as `loadConfig()` defaults them. */
export const defaultSettings = (): PolicySettings => ({
  rules: {
    'replica-set': 'enforce',
    'headless-service': 'enforce',
    'service-protection': 'enforce',
    'client-routing': 'warn',
  },
  lookupFailureMode: 'deny',
  clusterDomain: 'cluster.local',
  storage: { size: '1Gi' },
  initiationWindowSeconds: 30 * 60,
});

/** A fixed "now" (2026-01-01T00:00:00Z), so injected hooks compare equal across calls. */
export const FIXED_NOW = 1_767_225_600;

/** What the mutating webhook's edge finds for a brand-new StatefulSet: no claims yet. */
export const newStatefulSetLookups = (now = FIXED_NOW): MutationLookups => ({
  claims: { outcome: 'found', claims: [] },
  now,
});

export interface StatefulSetOptions {
  name?: string;
  namespace?: string;
  replicas?: number | undefined;
  image?: string;
  args?: string[];
  command?: string[];
  serviceName?: string;
  container?: Partial<V1Container>;
  sidecars?: V1Container[];
  initContainers?: V1Container[];
}

/** An apps/v1 StatefulSet as a user writes it (the shape in the Kubernetes API reference). */
export function statefulSet(o: StatefulSetOptions = {}): V1StatefulSet {
  const name = o.name ?? 'mongodb';
  const labels = { 'app.kubernetes.io/name': name };
  const container: V1Container = {
    name: 'mongodb',
    image: o.image ?? 'mongo:4.4',
    ...(o.command ? { command: o.command } : {}),
    ...(o.args ? { args: o.args } : {}),
    ports: [{ name: 'mongodb', containerPort: 27017 }],
    ...o.container,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: o.namespace ?? 'grade-submission', labels },
    spec: {
      ...(o.replicas === undefined ? {} : { replicas: o.replicas }),
      serviceName: o.serviceName ?? 'mongodb-headless',
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...(o.initContainers ? { initContainers: o.initContainers } : {}),
          containers: [container, ...(o.sidecars ?? [])],
        },
      },
    },
  };
}

/** A replica-set MongoDB StatefulSet that passes every rule once its headless Service exists. */
export const replicaSet = (o: StatefulSetOptions = {}) =>
  statefulSet({ replicas: 3, args: ['--replSet', 'rs0', '--bind_ip_all'], ...o });

/** A v1 Service; headless unless `clusterIP` says otherwise. */
export function service(name: string, namespace = 'grade-submission', clusterIP = 'None'): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      clusterIP,
      ...(clusterIP === 'None' ? { publishNotReadyAddresses: true } : {}),
      selector: { 'app.kubernetes.io/name': 'mongodb' },
      ports: [{ name: 'mongodb', port: 27017 }],
    },
  };
}

export interface ReviewOptions {
  operation?: Operation;
  object?: unknown;
  oldObject?: unknown;
  namespace?: string;
  uid?: string;
  resource?: { group: string; version: string; resource: string };
  kind?: { group: string; version: string; kind: string };
  subResource?: string;
}

/** An AdmissionReview v1 request exactly as kube-apiserver sends it to a webhook. */
export function admissionReview(o: ReviewOptions = {}): AdmissionReview & { request: AdmissionRequest } {
  const operation = o.operation ?? 'CREATE';
  const obj = (o.object ?? o.oldObject) as { metadata?: { name?: string; namespace?: string } } | undefined;
  const namespace = o.namespace ?? obj?.metadata?.namespace ?? 'grade-submission';
  const kind = o.kind ?? { group: 'apps', version: 'v1', kind: 'StatefulSet' };
  const resource = o.resource ?? { group: 'apps', version: 'v1', resource: 'statefulsets' };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? randomUUID(),
      kind,
      resource,
      ...(o.subResource ? { subResource: o.subResource, requestSubResource: o.subResource } : {}),
      requestKind: kind,
      requestResource: resource,
      name: obj?.metadata?.name ?? '',
      namespace,
      operation,
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object: operation === 'DELETE' ? null : (o.object ?? null),
      oldObject: o.oldObject ?? null,
      dryRun: false,
      options:
        operation === 'CREATE'
          ? { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions', fieldManager: 'kubectl-client-side-apply' }
          : operation === 'UPDATE'
            ? {
                apiVersion: 'meta.k8s.io/v1',
                kind: 'UpdateOptions',
                fieldManager: 'kubectl-client-side-apply',
              }
            : { apiVersion: 'meta.k8s.io/v1', kind: 'DeleteOptions', propagationPolicy: 'Background' },
    },
  };
}
