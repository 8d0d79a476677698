/**
 * What `npm run bench:peers` sends through kube-apiserver: server-side dry-run creates and updates
 * of one MongoDB StatefulSet and one non-database StatefulSet, the same objects in every peer's
 * namespace. The MongoDB set is test/e2e/scenarios/compliant-replica-set at 3 replicas (as the e2e
 * latency story sends it); the other is test/e2e/scenarios/not-a-database (nginx).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../test/support/repo.js';
import type { PeersCluster } from './cluster.js';

type Json = Record<string, unknown>;

export interface PeerWorkload {
  id: 'mongodb-create' | 'mongodb-update' | 'plain-create' | 'plain-update';
  label: string;
  operation: 'CREATE' | 'UPDATE';
  /** Whether the peers' registrations call them for it (the non-database set is skipped by sts-guard's matchConditions). */
  database: boolean;
  method: 'POST' | 'PUT';
  path(namespace: string): string;
  /** The body for `namespace` (updates: the object stored there, with a new image). */
  body(namespace: string): string;
  status: 200 | 201;
}

const scenario = (name: string, file: string) =>
  parseAllDocuments(readFileSync(join(repoRoot, 'test/e2e/scenarios', name, file), 'utf8')).map(
    (d) => d.toJS() as Json & { metadata: Json; spec: Json },
  );

const MONGODB = scenario('compliant-replica-set', '2-statefulset.yaml')[0]!;
const HEADLESS = scenario('compliant-replica-set', '1-headless-service.yaml')[0]!;
const WEB = scenario('not-a-database', 'statefulset.yaml')[0]!;

function withReplicas(sts: typeof MONGODB, name: string, replicas: number) {
  return { ...sts, metadata: { ...sts.metadata, name }, spec: { ...sts.spec, replicas } };
}

/** The image of every container of `stored` set to `image`; resourceVersion dropped (unconditional update). */
function bumped(stored: Json & { metadata: Json; spec: Json }, image: string): string {
  const copy = structuredClone(stored) as {
    metadata: Json;
    spec: { template: { spec: { containers: Array<{ image: string }> } } };
    status?: unknown;
  };
  delete copy.metadata.resourceVersion;
  delete copy.metadata.managedFields;
  delete copy.status;
  copy.spec.template.spec.containers[0]!.image = image;
  return JSON.stringify(copy);
}

/**
 * Creates the Service and the two StatefulSets for real in `namespace` (each through its peer),
 * so updates have a stored object; returns the four workloads bound to what was stored.
 */
export async function prepareWorkloads(cluster: PeersCluster, namespaces: string[]): Promise<PeerWorkload[]> {
  const stored: Record<
    string,
    { mongodb: Json & { metadata: Json; spec: Json }; web: Json & { metadata: Json; spec: Json } }
  > = {};
  const agent = cluster.agent(1);
  try {
    for (const namespace of namespaces) {
      await cluster.kubectl(['create', '-n', namespace, '-f', '-'], JSON.stringify(HEADLESS));
      for (const sts of [withReplicas(MONGODB, 'mongodb', 3), WEB]) {
        const created = await cluster.api(
          agent,
          'POST',
          `/apis/apps/v1/namespaces/${namespace}/statefulsets`,
          JSON.stringify(sts),
        );
        if (created.status !== 201)
          throw new Error(`creating ${namespace}/${sts.metadata.name}: ${created.body}`);
      }
      const get = async (name: string) =>
        JSON.parse(
          (await cluster.api(agent, 'GET', `/apis/apps/v1/namespaces/${namespace}/statefulsets/${name}`))
            .body,
        ) as Json & { metadata: Json; spec: Json };
      stored[namespace] = { mongodb: await get('mongodb'), web: await get('web') };
    }
  } finally {
    agent.destroy();
  }
  const statefulSets = (namespace: string) => `/apis/apps/v1/namespaces/${namespace}/statefulsets`;
  const created = (sts: typeof MONGODB) => JSON.stringify(sts);
  return [
    {
      id: 'mongodb-create',
      label: 'MongoDB StatefulSet, CREATE',
      operation: 'CREATE',
      database: true,
      method: 'POST',
      path: (ns) => `${statefulSets(ns)}?dryRun=All`,
      body: () => created(withReplicas(MONGODB, 'mongodb-new', 3)),
      status: 201,
    },
    {
      id: 'mongodb-update',
      label: 'MongoDB StatefulSet, UPDATE (image)',
      operation: 'UPDATE',
      database: true,
      method: 'PUT',
      path: (ns) => `${statefulSets(ns)}/mongodb?dryRun=All`,
      body: (ns) => bumped(stored[ns]!.mongodb, 'mongo:4.4.29'),
      status: 200,
    },
    {
      id: 'plain-create',
      label: 'nginx StatefulSet, CREATE',
      operation: 'CREATE',
      database: false,
      method: 'POST',
      path: (ns) => `${statefulSets(ns)}?dryRun=All`,
      body: () => created({ ...WEB, metadata: { ...WEB.metadata, name: 'web-new' } }),
      status: 201,
    },
    {
      id: 'plain-update',
      label: 'nginx StatefulSet, UPDATE (image)',
      operation: 'UPDATE',
      database: false,
      method: 'PUT',
      path: (ns) => `${statefulSets(ns)}/web?dryRun=All`,
      body: (ns) => bumped(stored[ns]!.web, 'nginx:1.27.1'),
      status: 200,
    },
  ];
}
