/**
 * MongoDB as the ecosystem deploys it (test/fixtures/: the Bitnami chart, the Community and
 * Percona operators, config files, shell wrappers), applied with kubectl to the real API server.
 * ConfigMap look-ups run with the RBAC deploy/ grants; operator ownership is real (a CRD and a
 * custom resource as owner); why sts-guard stepped aside is read from the API server's audit log.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { repoPath } from '../support/repo.js';
import {
  auditAnnotationsOf,
  freshNamespace,
  getJson,
  kubectl,
  kubectlOk,
  loadState,
  metricSum,
  stsGuardMetrics,
} from './support/env.js';

const state = loadState();

interface Manifest {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    ownerReferences?: Array<{ uid: string; kind: string; name: string }>;
  };
}
interface StoredStatefulSet {
  metadata: { annotations?: Record<string, string> };
  spec: {
    template: { spec: { containers: Array<{ name: string; lifecycle?: unknown }> } };
    volumeClaimTemplates?: unknown[];
  };
}

/** A fixture's objects moved into `namespace`; `owner` replaces the ownerReference's uid. */
function fixture(file: string, namespace: string, owner?: { uid: string }): string {
  // YAML 1.1, as Kubernetes reads manifests: `defaultMode: 0755` is octal there.
  const docs = parseAllDocuments(readFileSync(repoPath(`test/fixtures/${file}`), 'utf8'), {
    version: '1.1',
  }).map((d) => d.toJS() as Manifest);
  for (const doc of docs) {
    doc.metadata.namespace = namespace;
    for (const ref of doc.metadata.ownerReferences ?? []) if (owner) ref.uid = owner.uid;
  }
  // JSON, not YAML: re-serialised YAML 1.2 would write "no" unquoted, which kubectl reads as a bool.
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs });
}

const statefulSetName = (file: string) =>
  parseAllDocuments(readFileSync(repoPath(`test/fixtures/${file}`), 'utf8'))
    .map((d) => d.toJS() as Manifest)
    .find((d) => d.kind === 'StatefulSet')?.metadata.name ?? '';

async function apply(file: string, namespace: string, owner?: { uid: string }) {
  return kubectl(state, ['apply', '-f', '-'], fixture(file, namespace, owner));
}

t.test('a config file read from a mounted ConfigMap, through the real API and RBAC', async (t) => {
  const ns = 'eco-config-file';
  await freshNamespace(state, ns);
  const found = async () =>
    metricSum(await stsGuardMetrics(state), 'sts_guard_lookups_total', { outcome: 'found' });
  const before = await found();

  const admitted = await apply('mongod-config-file.yaml', ns);
  t.equal(admitted.code, 0, 'replication.replSetName in the ConfigMap: admitted', {
    stderr: admitted.stderr,
  });
  const sts = await getJson<StoredStatefulSet>(state, ['statefulset', 'mongodb', '-n', ns]);
  t.match(sts.metadata.annotations?.['sts-guard.io/injected'] ?? '', 'bootstrap-hook', 'and given the hook');
  t.ok((await found()) > before, 'sts-guard read the ConfigMap with its ServiceAccount token');

  await kubectlOk(state, ['delete', 'statefulset', 'mongodb', '-n', ns]);
  const denied = await apply('mongod-config-file-without-replication.yaml', ns);
  t.not(denied.code, 0, 'a config file without replication: denied');
  t.match(denied.stderr, 'from a config file without replication.replSetName');
  t.match(denied.stderr, 'replication:');
  t.match(denied.stderr, 'replSetName: rs0', 'the fix is the replication: block to add');
});

t.test('a shell wrapper that execs mongod', async (t) => {
  const ns = 'eco-shell';
  await freshNamespace(state, ns);
  const admitted = await apply('shell-wrapped-mongod.yaml', ns);
  t.equal(admitted.code, 0, 'with --replSet in the script: admitted', { stderr: admitted.stderr });
  await kubectlOk(state, ['delete', 'statefulset', 'mongodb', '-n', ns]);
  const denied = await apply('shell-wrapped-mongod-without-replset.yaml', ns);
  t.not(denied.code, 0, 'without it: denied');
  t.match(denied.stderr, 'exec mongod --replSet rs0 --bind_ip_all', 'the fix edits the script line');
});

t.test("the Bitnami chart's replica set is admitted and never given sts-guard's hook", async (t) => {
  const ns = 'eco-bitnami';
  await freshNamespace(state, ns);
  const applied = await apply('bitnami-mongodb-replicaset.yaml', ns);
  t.equal(applied.code, 0, { stderr: applied.stderr });
  const sts = await getJson<StoredStatefulSet>(state, ['statefulset', 'mongodb', '-n', ns]);
  const mongodb = sts.spec.template.spec.containers.find((c) => c.name === 'mongodb');
  t.notOk(mongodb?.lifecycle, 'no postStart hook: the image bootstraps the set itself');
  t.notMatch(sts.metadata.annotations?.['sts-guard.io/injected'] ?? '', 'bootstrap-hook');
});

/** A minimal CRD of the operator's kind, so the owner is a real object the garbage collector finds. */
async function ownerOfKind(ns: string, group: string, kind: string, name: string): Promise<{ uid: string }> {
  const plural = `${kind.toLowerCase()}s`;
  await kubectlOk(
    state,
    ['apply', '-f', '-'],
    stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { kind, plural, singular: kind.toLowerCase() },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    }),
  );
  await kubectlOk(state, ['wait', '--for=condition=Established', `crd/${plural}.${group}`, '--timeout=60s']);
  const created = await kubectlOk(
    state,
    ['apply', '-o', 'json', '-f', '-'],
    stringify({ apiVersion: `${group}/v1`, kind, metadata: { name, namespace: ns }, spec: {} }),
  );
  return { uid: (JSON.parse(created) as { metadata: { uid: string } }).metadata.uid };
}

for (const [file, group, kind, ownerName] of [
  ['mongodb-community-operator.yaml', 'mongodbcommunity.mongodb.com', 'MongoDBCommunity', 'example-mongodb'],
  ['percona-server-mongodb.yaml', 'psmdb.percona.com', 'PerconaServerMongoDB', 'my-cluster-name'],
] as const) {
  t.test(`a StatefulSet owned by ${kind} is left to its operator`, async (t) => {
    const ns = `eco-${kind.toLowerCase()}`;
    await freshNamespace(state, ns);
    const owner = await ownerOfKind(ns, group, kind, ownerName);
    const applied = await apply(file, ns, owner);
    t.equal(applied.code, 0, 'admitted', { stderr: applied.stderr });
    const name = statefulSetName(file);
    const sts = await getJson<StoredStatefulSet>(state, ['statefulset', name, '-n', ns]);
    t.notOk(sts.metadata.annotations?.['sts-guard.io/injected'], 'not mutated');
    const audit = await auditAnnotationsOf(state, ns, 'statefulsets', name);
    t.match(
      audit['mutate.sts-guard.io/stepped-aside'] ?? '',
      kind,
      'the audit log says why /mutate stepped aside',
    );
    t.match(audit['validate.sts-guard.io/stepped-aside'] ?? '', kind, 'and why /validate did');
  });
}
