import type { V1Container, V1EnvVar } from '@kubernetes/client-node';
import { imageRepositorySegments } from '../image.js';
import { shellQuote } from '../shell.js';

/** Last path segments that name a MongoDB server image, whatever the registry or mirror path. */
export const SERVER_IMAGES = new Set([
  'mongo',
  'mongodb',
  'mongodb-community-server',
  'mongodb-enterprise-server',
  'percona-server-mongodb',
]);

/** mongod's own default; the official, MongoDB Inc. and Percona images keep it. */
export const DEFAULT_DATA_PATH = '/data/db';

/** bitnami/mongodb keeps its data under the chart's persistence.mountPath, not /data/db. */
export const BITNAMI_DATA_PATH = '/bitnami/mongodb';

/**
 * The bitnami/mongodb chart's replica-set entrypoint (templates/replicaset/scripts-configmap.yaml):
 * it exports MONGODB_REPLICA_SET_MODE=primary on pod 0 and secondary on the others.
 */
export const BITNAMI_CHART_SETUP_SCRIPT = '/scripts/setup.sh';

/** The image's own start-up, which reads MONGODB_* and runs mongod (as the chart's setup.sh ends). */
const BITNAMI_ENTRYPOINT = '/opt/bitnami/scripts/mongodb/entrypoint.sh /opt/bitnami/scripts/mongodb/run.sh';

/** bitnami/mongodb's default replica-set name when MONGODB_REPLICA_SET_NAME is unset. */
const BITNAMI_DEFAULT_REPLICA_SET_NAME = 'replicaset';

export const isBitnamiImage = (image: string | undefined) =>
  imageRepositorySegments(image ?? '').includes('bitnami');

function envVar(container: V1Container, name: string): V1EnvVar | undefined {
  // The last definition wins, as in the kubelet.
  return (container.env ?? []).findLast((e) => e?.name === name);
}

/** A variable's value for messages: the literal, or where it comes from. */
function envValue(variable: V1EnvVar): string | undefined {
  if (typeof variable.value === 'string') return variable.value === '' ? undefined : variable.value;
  const from = variable.valueFrom;
  if (from?.configMapKeyRef)
    return `(ConfigMap ${from.configMapKeyRef.name} key ${from.configMapKeyRef.key})`;
  if (from?.secretKeyRef) return `(Secret ${from.secretKeyRef.name} key ${from.secretKeyRef.key})`;
  if (from?.fieldRef) return `(field ${from.fieldRef.fieldPath})`;
  return undefined;
}

/**
 * The replica set a bitnami/mongodb container runs, configured through its environment: the image
 * runs mongod as a member of MONGODB_REPLICA_SET_NAME when MONGODB_REPLICA_SET_MODE is set (in
 * `env`, literal or valueFrom, or exported by its wrapper script), and the chart's setup.sh sets
 * the mode per pod. The image initiates (primary) or joins (secondary) the set itself.
 */
export function bitnamiReplicaSet(
  container: V1Container,
  scriptAssignments: ReadonlyMap<string, string>,
): string | undefined {
  const modeVariable = envVar(container, 'MONGODB_REPLICA_SET_MODE');
  const mode = modeVariable ? envValue(modeVariable) : scriptAssignments.get('MONGODB_REPLICA_SET_MODE');
  const nameVariable = envVar(container, 'MONGODB_REPLICA_SET_NAME');
  const name = scriptAssignments.get('MONGODB_REPLICA_SET_NAME') || (nameVariable && envValue(nameVariable));
  const runsChartSetup = (container.command ?? [])[0] === BITNAMI_CHART_SETUP_SCRIPT && nameVariable;
  if (!mode && !runsChartSetup) return undefined;
  return name || BITNAMI_DEFAULT_REPLICA_SET_NAME;
}

export interface BitnamiFixInput {
  container: V1Container;
  statefulSetName: string;
  serviceName: string;
  namespace: string;
  clusterDomain: string;
}

/**
 * What turns a standalone bitnami/mongodb StatefulSet into a replica set, as the chart's setup.sh
 * does: pod 0 starts as primary and initiates the set, the others join it as secondaries. The
 * mode differs per pod, and a StatefulSet's pods share one `env`, so a short wrapper exports it.
 */
export function bitnamiReplicaSetFix(input: BitnamiFixInput, suggestedName: string): string {
  const { container, statefulSetName, serviceName, namespace, clusterDomain } = input;
  const domain = `${serviceName}.${namespace}.svc.${clusterDomain}`;
  const wanted: V1EnvVar[] = [
    { name: 'MY_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'MONGODB_REPLICA_SET_NAME', value: suggestedName },
    { name: 'MONGODB_INITIAL_PRIMARY_HOST', value: `${statefulSetName}-0.${domain}` },
    { name: 'MONGODB_ADVERTISED_HOSTNAME', value: `$(MY_POD_NAME).${domain}` },
  ];
  const env = [...(container.env ?? []).filter((e) => !wanted.some((w) => w.name === e.name)), ...wanted];
  const script = [
    `if [ "$MY_POD_NAME" = ${shellQuote(`${statefulSetName}-0`)} ]; then export MONGODB_REPLICA_SET_MODE=primary; else export MONGODB_REPLICA_SET_MODE=secondary MONGODB_INITIAL_PRIMARY_ROOT_PASSWORD="$MONGODB_ROOT_PASSWORD"; fi`,
    `exec ${BITNAMI_ENTRYPOINT}`,
  ].join('\n');
  const snippet = { command: ['/bin/bash', '-ec', script], args: [] as string[], env };
  return [
    `bitnami/mongodb runs a replica set when MONGODB_REPLICA_SET_MODE is set: primary on pod ${statefulSetName}-0, secondary on the others (with the bitnami/mongodb Helm chart, set architecture=replicaset instead). Set on container "${container.name}":`,
    `command: ${JSON.stringify(snippet.command)}`,
    'args: []',
    `env: ${JSON.stringify(snippet.env)}`,
  ].join('\n');
}
