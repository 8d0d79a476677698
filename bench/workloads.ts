import { readFileSync } from 'node:fs';
import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import { mutateStatefulSet } from '../src/policy/index.js';
import {
  admissionReview,
  defaultSettings,
  newStatefulSetLookups,
  replicaSet,
  service,
  statefulSet,
} from '../test/support/fixtures.js';
import { asApplied } from './applied-object.js';

/** One AdmissionReview body the load generators send, serialised once. */
export interface Workload {
  id: 'create' | 'update' | 'plain';
  /** What the table calls it. */
  label: string;
  body: string;
}

export const NAMESPACE = 'grade-submission';
/** The headless Service the MongoDB StatefulSets name; the local API server holds it. */
export const headlessService = () => service('mongodb-headless', NAMESPACE);

/**
 * The client-routing workload's namespace: its own, so that its ClusterIP Service adds a warning
 * to that row only. examples/review-replica-set.json is moved here (its pods carry `app: mongodb`).
 */
export const ROUTING_NAMESPACE = 'grade-submission-routing';

/**
 * The Services issue 21's throughput figure was measured with: the headless Service the example
 * names and a ClusterIP Service `mongodb` over the same pods (no `seed-only` annotation), so
 * sts-guard's client-routing rule answers with a warning.
 */
export function routingServices(): V1Service[] {
  const overPods = (s: V1Service): V1Service => ({ ...s, spec: { ...s.spec, selector: { app: 'mongodb' } } });
  return [
    overPods(service('mongodb-headless', ROUTING_NAMESPACE)),
    overPods(service('mongodb', ROUTING_NAMESPACE, '10.96.0.27')),
  ];
}

/** examples/review-replica-set.json, in ROUTING_NAMESPACE. */
function routingReview(): string {
  const review = JSON.parse(
    readFileSync(new URL('../examples/review-replica-set.json', import.meta.url), 'utf8'),
  ) as { request: { namespace: string; object: { metadata: { namespace: string } } } };
  review.request.namespace = ROUTING_NAMESPACE;
  review.request.object.metadata.namespace = ROUTING_NAMESPACE;
  return JSON.stringify(review);
}

/** The MongoDB replica set as a user writes it: resources, probes and a metrics sidecar. */
function mongodbManifest(image: string): V1StatefulSet {
  return replicaSet({
    image,
    container: {
      env: [
        { name: 'MONGO_INITDB_DATABASE', value: 'grades' },
        { name: 'TZ', value: 'UTC' },
      ],
      resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '1Gi' } },
      readinessProbe: {
        exec: { command: ['mongo', '--quiet', '--eval', 'db.adminCommand("ping").ok'] },
        initialDelaySeconds: 5,
        periodSeconds: 10,
      },
      livenessProbe: { tcpSocket: { port: 27017 as never }, initialDelaySeconds: 30, periodSeconds: 20 },
    },
    sidecars: [
      {
        name: 'metrics',
        image: 'percona/mongodb_exporter:0.40',
        args: ['--mongodb.uri=mongodb://127.0.0.1:27017', '--collect-all'],
        ports: [{ name: 'metrics', containerPort: 9216 }],
      },
    ],
  });
}

/** The nginx `web` StatefulSet from the Kubernetes StatefulSet tutorial: no database. */
function webManifest(): V1StatefulSet {
  const sts = statefulSet({
    name: 'web',
    namespace: NAMESPACE,
    replicas: 3,
    image: 'registry.k8s.io/nginx-slim:0.24',
    serviceName: 'nginx',
    container: {
      name: 'nginx',
      ports: [{ name: 'web', containerPort: 80 }],
      volumeMounts: [{ name: 'www', mountPath: '/usr/share/nginx/html' }],
    },
  });
  sts.spec!.volumeClaimTemplates = [
    {
      metadata: { name: 'www' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
  ];
  return sts;
}

/** The CREATE after sts-guard's own mutation: what the API server stores and later sends as oldObject. */
function mutated(sts: V1StatefulSet): V1StatefulSet {
  const { patch } = mutateStatefulSet(
    { operation: 'CREATE', namespace: NAMESPACE, object: sts },
    defaultSettings(),
    newStatefulSetLookups(),
  );
  return jsonpatch.applyPatch(structuredClone(sts), patch as jsonpatch.Operation[], false, false)
    .newDocument as V1StatefulSet;
}

const FIXED_UID = (n: number) => `5d1f8a3e-2c4b-4f6a-9e7d-${String(n).padStart(12, '0')}`;

/** The three bodies every figure uses, built once per run. */
export function workloads(): Workload[] {
  const create = admissionReview({
    uid: FIXED_UID(1),
    operation: 'CREATE',
    object: asApplied(mongodbManifest('mongo:4.4')),
  });

  // An image bump on the stored (already mutated) replica set: object and oldObject both carry
  // uid, resourceVersion, status, last-applied and two managedFields entries.
  const stored = { uid: 'c2f5a1d0-8b7e-4e2a-9c31-6f0d4b9a7e15', resourceVersion: '48213' };
  const before = mongodbManifest('mongo:4.4');
  const after = mongodbManifest('mongo:4.4.29');
  const oldObject = asApplied(before, { ...stored, form: mutated(before) });
  const object = asApplied(after, { ...stored, form: mutated(after) });
  const update = admissionReview({ uid: FIXED_UID(2), operation: 'UPDATE', object, oldObject });

  const plain = admissionReview({ uid: FIXED_UID(3), operation: 'CREATE', object: asApplied(webManifest()) });

  const sized = (id: Workload['id'], what: string, review: unknown): Workload => {
    const body = JSON.stringify(review);
    return { id, label: `${what} (${(Buffer.byteLength(body) / 1024).toFixed(1)} KB)`, body };
  };
  return [
    sized('create', 'MongoDB rs CREATE', create),
    sized('update', 'MongoDB rs UPDATE+oldObject', update),
    sized('plain', 'nginx sts CREATE', plain),
  ];
}

/** One row of the CPU-per-review table: a body, the webhook it goes to, and the answer expected. */
export interface CpuWorkload {
  id: 'create-validate' | 'create-mutate' | 'plain' | 'scale' | 'service-delete' | 'malformed' | 'routing';
  label: string;
  path: '/validate' | '/mutate';
  body: string;
  /** 200 with an admitting AdmissionReview, or 400 (the malformed body). */
  status: 200 | 400;
  /** The look-up the review makes live, said in the table: its cost is in the figure. */
  live?: string;
  /** Reviews per round as a share of the plan's (default 1): the malformed body's are slow to send. */
  share?: number;
}

/** An autoscaling/v1 Scale as the API server builds it for `statefulsets/scale` (as test/support/reviews.ts). */
function scaleObject(name: string, replicas: number) {
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: {
      name,
      namespace: NAMESPACE,
      uid: 'c2f5a1d0-8b7e-4e2a-9c31-6f0d4b9a7e15',
      resourceVersion: '48213',
    },
    spec: { replicas },
    status: { replicas: 3, selector: `app.kubernetes.io/name=${name}` },
  };
}

/**
 * The StatefulSets the local API server holds for the CPU workloads: the MongoDB replica set as
 * stored after its CREATE (what a scale reads) and the nginx one (both listed on a Service DELETE).
 */
export function storedStatefulSets(): V1StatefulSet[] {
  const stored = { uid: 'c2f5a1d0-8b7e-4e2a-9c31-6f0d4b9a7e15', resourceVersion: '48213' };
  const mongodb = mongodbManifest('mongo:4.4');
  const web = webManifest();
  return [
    asApplied(mongodb, { ...stored, form: mutated(mongodb) }),
    asApplied(web, { uid: 'a8e0c6b2-1d3f-4a5e-8b7c-9d0e1f2a3b4c', resourceVersion: '48214', form: web }),
  ];
}

/**
 * The six reviews of the CPU-per-review table. The CREATE and nginx bodies are the throughput
 * workloads'; the scale reads the StatefulSet live (as sts-guard always does) and the Service
 * DELETE lists the namespace's StatefulSets live; the malformed body is the CREATE cut short.
 */
export function cpuWorkloads(list: Workload[] = workloads()): CpuWorkload[] {
  const body = (id: Workload['id']) => list.find((w) => w.id === id)!.body;
  const create = body('create');
  const scale = admissionReview({
    uid: FIXED_UID(4),
    operation: 'UPDATE',
    subResource: 'scale',
    kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
    object: scaleObject('mongodb', 5),
    oldObject: scaleObject('mongodb', 3),
  });
  // `kubectl delete service nginx`: headless, so sts-guard lists the StatefulSets that may need it.
  const deletion = admissionReview({
    uid: FIXED_UID(5),
    operation: 'DELETE',
    resource: { group: '', version: 'v1', resource: 'services' },
    kind: { group: '', version: 'v1', kind: 'Service' },
    oldObject: { ...headlessService(), metadata: { name: 'nginx', namespace: NAMESPACE } },
  });
  const kb = (text: string) => `${(Buffer.byteLength(text) / 1024).toFixed(1)} KB`;
  const scaleBody = JSON.stringify(scale);
  const deletionBody = JSON.stringify(deletion);
  const malformed = create.slice(0, Math.floor(create.length / 2));
  const routing = routingReview();
  return [
    {
      id: 'create-validate',
      label: `/validate MongoDB rs CREATE (${kb(create)})`,
      path: '/validate',
      body: create,
      status: 200,
    },
    {
      id: 'create-mutate',
      label: `/mutate   MongoDB rs CREATE (${kb(create)})`,
      path: '/mutate',
      body: create,
      status: 200,
    },
    {
      id: 'plain',
      label: `/validate nginx sts CREATE (${kb(body('plain'))})`,
      path: '/validate',
      body: body('plain'),
      status: 200,
    },
    {
      id: 'scale',
      label: `/validate statefulsets/scale 3→5 (${kb(scaleBody)})`,
      path: '/validate',
      body: scaleBody,
      status: 200,
      live: 'StatefulSet GET',
    },
    {
      id: 'service-delete',
      label: `/validate Service DELETE (${kb(deletionBody)})`,
      path: '/validate',
      body: deletionBody,
      status: 200,
      live: 'StatefulSet LIST',
    },
    {
      id: 'malformed',
      label: `/validate malformed body (${kb(malformed)})`,
      path: '/validate',
      body: malformed,
      status: 400,
      // Fastify closes the connection after a body it cannot parse (content-type-parser.js: "the
      // client may send more data"), so each of these reviews opens a TLS connection: fewer of them.
      share: 0.2,
    },
    {
      // Issue 21's regression workload: every look-up from the cache, the answer carries the
      // client-routing warning.
      id: 'routing',
      label: `/validate review-replica-set.json + ClusterIP Service (${kb(routing)})`,
      path: '/validate',
      body: routing,
      status: 200,
    },
  ];
}
