import type { V1OwnerReference } from '@kubernetes/client-node';

/**
 * Operators that build and reconcile MongoDB StatefulSets themselves, by the API group and kind of
 * the custom resource that owns (controls) the StatefulSet. Each wires the replica set its own way
 * (an automation agent writing mongod's config, `--replSet` from its CR), initiates it, and would
 * undo any change sts-guard made on its next reconcile.
 */
const OPERATOR_KINDS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  // mongodb/mongodb-kubernetes-operator (Community): api/v1 MongoDBCommunity
  ['mongodbcommunity.mongodb.com', new Set(['MongoDBCommunity'])],
  // MongoDB Enterprise Kubernetes Operator / mongodb-kubernetes: MongoDB, Ops Manager's application database
  ['mongodb.com', new Set(['MongoDB', 'MongoDBOpsManager', 'MongoDBMultiCluster'])],
  // percona/percona-server-mongodb-operator: pkg/apis/psmdb/v1 PerconaServerMongoDB
  ['psmdb.percona.com', new Set(['PerconaServerMongoDB'])],
]);

/** `Kind.group` of a MongoDB operator's resource, or undefined for any other owner. */
export function mongodbOperatorOf(owner: V1OwnerReference): string | undefined {
  const group = owner.apiVersion.includes('/') ? owner.apiVersion.split('/')[0] : '';
  if (!group || !OPERATOR_KINDS.get(group)?.has(owner.kind)) return undefined;
  return `${owner.kind}.${group}`;
}
