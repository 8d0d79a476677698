/**
 * JSON schemas for what the webhook accepts, so a malformed review is a 400 and never reaches the
 * policy. scripts/compile-schemas.ts compiles them ahead of time into src/generated/: after a
 * change here, run it (test/generated.test.ts fails until then).
 */
const gvk = {
  type: 'object',
  required: ['group', 'version', 'kind'],
  properties: { group: { type: 'string' }, version: { type: 'string' }, kind: { type: 'string' } },
} as const;

const gvr = {
  type: 'object',
  required: ['group', 'version', 'resource'],
  properties: { group: { type: 'string' }, version: { type: 'string' }, resource: { type: 'string' } },
} as const;

const kubernetesObject = { type: ['object', 'null'] } as const;

export const admissionReviewRequestSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { const: 'admission.k8s.io/v1' },
    kind: { const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'resource', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1, maxLength: 256 },
        kind: gvk,
        resource: gvr,
        subResource: { type: 'string' },
        requestKind: gvk,
        requestResource: gvr,
        requestSubResource: { type: 'string' },
        name: { type: 'string' },
        namespace: { type: 'string' },
        operation: { enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] },
        userInfo: { type: 'object' },
        object: kubernetesObject,
        oldObject: kubernetesObject,
        dryRun: { type: 'boolean' },
        options: kubernetesObject,
      },
    },
  },
} as const;

const stringArray = { type: 'array', items: { type: 'string' } } as const;

const container = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string' },
    image: { type: 'string' },
    command: stringArray,
    args: stringArray,
    volumeMounts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'mountPath'],
        // A chart that renders `subPath: {{ "" }}` sends null: the same as no subPath.
        properties: {
          name: { type: 'string' },
          mountPath: { type: 'string' },
          subPath: { type: ['string', 'null'] },
        },
      },
    },
    // Read for images configured through their environment (bitnami/mongodb).
    env: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string' },
          value: { type: ['string', 'null'] },
          valueFrom: { type: 'object' },
        },
      },
    },
    lifecycle: { type: 'object' },
  },
} as const;

/** A pod volume: the ConfigMap or Secret a server's config file may be read from. */
const volume = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string' },
    configMap: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        items: {
          type: 'array',
          items: {
            type: 'object',
            required: ['key', 'path'],
            properties: { key: { type: 'string' }, path: { type: 'string' } },
          },
        },
      },
    },
    secret: { type: 'object', properties: { secretName: { type: 'string' } } },
  },
} as const;

/**
 * The parts of an apps/v1 StatefulSet the policy reads, with their API types. The API server
 * only sends valid objects; this keeps a forged one from reaching the policy with wrong types.
 */
export const statefulSetSchema = {
  type: 'object',
  required: ['metadata'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        namespace: { type: 'string' },
        annotations: { type: 'object', additionalProperties: { type: 'string' } },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        // The controller reference tells an operator's StatefulSet apart.
        ownerReferences: {
          type: 'array',
          items: {
            type: 'object',
            required: ['apiVersion', 'kind', 'name'],
            properties: {
              apiVersion: { type: 'string' },
              kind: { type: 'string' },
              name: { type: 'string' },
              controller: { type: 'boolean' },
            },
          },
        },
      },
    },
    spec: {
      type: 'object',
      properties: {
        replicas: { type: 'integer', minimum: 0 },
        serviceName: { type: 'string' },
        selector: { type: 'object' },
        template: {
          type: 'object',
          properties: {
            spec: {
              type: 'object',
              properties: {
                containers: { type: 'array', items: container },
                initContainers: { type: 'array', items: container },
                volumes: { type: 'array', items: volume },
              },
            },
          },
        },
        volumeClaimTemplates: { type: 'array', items: { type: 'object' } },
        persistentVolumeClaimRetentionPolicy: { type: 'object' },
      },
    },
  },
} as const;

const objectMeta = {
  type: 'object',
  properties: { name: { type: 'string' }, namespace: { type: 'string' } },
} as const;

/** An autoscaling/v1 Scale, the object of a `statefulsets/scale` review: the parts the policy reads. */
export const scaleSchema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: objectMeta,
    spec: { type: 'object', properties: { replicas: { type: 'integer', minimum: 0 } } },
    status: { type: 'object' },
  },
} as const;

/** A v1 Service, the object of a Service review: the parts the headless-Service protection reads. */
export const serviceSchema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: objectMeta,
    spec: { type: 'object', properties: { clusterIP: { type: 'string' }, type: { type: 'string' } } },
  },
} as const;
