/**
 * A StatefulSet as kube-apiserver hands it to admission after `kubectl apply`: defaulted, with the
 * last-applied annotation and the client-side-apply managedFields entry. The bench's bodies are
 * built from manifests with it, so their size and shape are those of real reviews.
 */
import type { V1Container, V1StatefulSet } from '@kubernetes/client-node';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The `fieldsV1` tree the API server's field manager records for `value`: `f:` per field,
 * `k:{"name":…}` per named list item, `.` for a set of scalars. Realistic size is the point here.
 */
function fieldsV1(value: Json): { [key: string]: Json } {
  if (value === null || typeof value !== 'object') return {};
  if (Array.isArray(value)) {
    const tree: { [key: string]: Json } = {};
    for (const item of value) {
      if (item && typeof item === 'object' && !Array.isArray(item) && typeof item.name === 'string') {
        tree[`k:${JSON.stringify({ name: item.name })}`] = { '.': {}, ...fieldsV1(item) };
      } else if (item && typeof item === 'object' && !Array.isArray(item) && 'containerPort' in item) {
        tree[`k:${JSON.stringify({ containerPort: item.containerPort, protocol: 'TCP' })}`] = {
          '.': {},
          ...fieldsV1(item),
        };
      }
    }
    return tree;
  }
  const tree: { [key: string]: Json } = {};
  for (const [key, child] of Object.entries(value)) {
    tree[`f:${key}`] = child && typeof child === 'object' ? fieldsV1(child) : {};
  }
  return tree;
}

const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as { [key: string]: Json };

/** A container with the defaults kube-apiserver fills in before admission. */
function defaultedContainer(container: V1Container): V1Container {
  return {
    ...container,
    ports: container.ports?.map((p) => ({ protocol: 'TCP', ...p })),
    resources: container.resources ?? {},
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  };
}

/**
 * A StatefulSet as the API server hands it to admission after `kubectl apply`: defaulted, with the
 * last-applied annotation and the client-side-apply managedFields entry (the bulk of real bodies).
 */
export function asApplied(
  manifest: V1StatefulSet,
  stored?: { uid: string; resourceVersion: string; form: V1StatefulSet },
): V1StatefulSet {
  // A stored object carries sts-guard's CREATE-time mutation; last-applied is the user's manifest.
  const applied = stored?.form ?? manifest;
  const spec = applied.spec!;
  const podSpec = spec.template.spec!;
  const metadata = { ...applied.metadata };
  const lastApplied = JSON.stringify({ ...manifest, metadata: { ...manifest.metadata, annotations: {} } });
  const object: V1StatefulSet = {
    ...applied,
    metadata: {
      ...metadata,
      ...(stored
        ? {
            uid: stored.uid,
            resourceVersion: stored.resourceVersion,
            generation: 2,
            creationTimestamp: new Date('2025-01-15T09:30:00Z'),
          }
        : {}),
      annotations: {
        ...metadata.annotations,
        'kubectl.kubernetes.io/last-applied-configuration': `${lastApplied}\n`,
      },
    },
    spec: {
      ...spec,
      podManagementPolicy: spec.podManagementPolicy ?? 'OrderedReady',
      revisionHistoryLimit: 10,
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      template: {
        ...spec.template,
        metadata: { ...spec.template.metadata, creationTimestamp: undefined },
        spec: {
          ...podSpec,
          containers: podSpec.containers.map(defaultedContainer),
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
          dnsPolicy: 'ClusterFirst',
          securityContext: {},
          schedulerName: 'default-scheduler',
        },
      },
    },
  };
  const json = asJson(object);
  const { metadata: objectMetadata, spec: objectSpec } = json as {
    metadata: { [key: string]: Json };
    spec: Json;
  };
  const managedFields: Json[] = [
    {
      manager: 'kubectl-client-side-apply',
      operation: 'Update',
      apiVersion: 'apps/v1',
      time: '2025-01-15T09:30:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': fieldsV1({
          annotations: objectMetadata.annotations ?? {},
          labels: objectMetadata.labels ?? {},
        }),
        'f:spec': fieldsV1(objectSpec),
      },
    },
  ];
  if (stored) {
    managedFields.push({
      manager: 'kube-controller-manager',
      operation: 'Update',
      apiVersion: 'apps/v1',
      time: '2025-01-15T09:31:12Z',
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:status': fieldsV1({
          availableReplicas: 3,
          collisionCount: 0,
          currentReplicas: 3,
          currentRevision: '',
          observedGeneration: 1,
          readyReplicas: 3,
          replicas: 3,
          updateRevision: '',
          updatedReplicas: 3,
        }),
      },
      subresource: 'status',
    });
  }
  return {
    ...object,
    metadata: { ...object.metadata, managedFields: managedFields as never },
    ...(stored
      ? {
          status: {
            observedGeneration: 1,
            replicas: 3,
            readyReplicas: 3,
            currentReplicas: 3,
            updatedReplicas: 3,
            currentRevision: 'mongodb-7d9f8b6c5d',
            updateRevision: 'mongodb-7d9f8b6c5d',
            collisionCount: 0,
            availableReplicas: 3,
          },
        }
      : {}),
  };
}
