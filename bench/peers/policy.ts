/**
 * The Kyverno ClusterPolicy that does what sts-guard's three core rules do, for `npm run
 * bench:peers`: the same verdicts on the part of sts-guard Kyverno can express, so the two can be
 * timed on the same work. What it leaves out, and why, is `LEFT_OUT` (also in bench/README.md).
 *
 * - `replica-set`: a MongoDB container (sts-guard's image rule: the repository's last path segment,
 *   any registry, tag or digest) in a StatefulSet of more than one replica must say `--replSet`
 *   in its command or args.
 * - `headless-service`: `spec.serviceName` must name a Service of the namespace with
 *   `clusterIP: None`, read with an `apiCall` (a live GET per review; absent reads as not headless).
 * - `bootstrap-hook`: a replica-set member's MongoDB container without a `postStart` hook gets
 *   sts-guard's own bootstrap hook (src/engines/mongodb/bootstrap.ts), filled in by Kyverno from
 *   the request, with the initiation window closed.
 */
import { bootstrapScript } from '../../src/engines/mongodb/bootstrap.js';
import { SERVER_IMAGES } from '../../src/engines/mongodb/images.js';

/** sts-guard's parts the policy does not express (the comparison is on the rest). */
export const LEFT_OUT = [
  'shell wrappers parsed as the shell would (the policy only looks for the text --replSet in command and args)',
  'mongod config files read from their ConfigMap (replication.replSetName, net.port, storage.dbPath)',
  "images configured by their environment (bitnami/mongodb's MONGODB_REPLICA_SET_MODE)",
  'stepping aside for StatefulSets owned by a MongoDB operator',
  '"could not tell" and the rule modes (enforce, warn, off) and LOOKUP_FAILURE_MODE',
  'UPDATE semantics (deny only when the spec changed; metadata-only updates of a non-compliant set admitted with a warning)',
  'the initiation window stamped from a PersistentVolumeClaim look-up (the injected hook has it closed), the reset annotation, hook upgrades',
  'the data volume claim template and its mount',
  'every soft finding (warnings): even replica counts, retention policies, publishNotReadyAddresses, OrderedReady with probes, client-routing',
  'the statefulsets/scale and Service rules (service-protection, client-routing on Service writes)',
  'exceptions from the sts-guard-exceptions ConfigMap (Kyverno has its own PolicyException)',
  'the fix in the denial message (the replica-set name to add, the edited script line)',
] as const;

/** RE2 (Go) pattern of a MongoDB server image: sts-guard's last-path-segment rule, case-insensitive. */
export const MONGODB_IMAGE_RE2 = `(?i)^([^/]+/)*(${[...SERVER_IMAGES].join('|')})(:[^/@]*)?(@[a-z0-9]+:[a-f0-9]+)?$`;

const isMongodb = (image: string) => `regex_match('${MONGODB_IMAGE_RE2}', ${image})`;
/** command and args of `container` as one string (either may be absent). */
const argv = (container: string) =>
  `join(' ', [${container}.command || \`[]\`, ${container}.args || \`[]\`][])`;

/**
 * Kyverno substitutes `$(path)` references in patches; a `$(` in the shell script that its regex
 * would take for one is escaped (Kyverno unescapes `\$(` when it substitutes).
 */
function escapeReferences(text: string): string {
  return text.replace(/\$\(.[^ ]*\)/g, (match) => `\\${match}`);
}

/** sts-guard's hook script with Kyverno variables where sts-guard puts the request's values. */
export function kyvernoHookScript(): string {
  const marker = { rs: '@@RS@@', service: '@@SERVICE@@', namespace: '@@NAMESPACE@@' };
  const script = bootstrapScript({
    replicaSetName: marker.rs,
    serviceName: marker.service,
    namespace: marker.namespace,
    clusterDomain: 'cluster.local',
    port: 27017,
  });
  if (script.includes('{{')) throw new Error('the hook script contains "{{", which Kyverno would substitute');
  return escapeReferences(script)
    .replace(marker.rs, '{{ replicaSetName }}')
    .replace(marker.service, '{{ request.object.spec.serviceName }}')
    .replace(marker.namespace, '{{ request.namespace }}');
}

const statefulSets = (operations: string[]) => ({
  any: [{ resources: { kinds: ['apps/v1/StatefulSet'], operations } }],
});

export const POLICY_NAME = 'mongodb-replica-set';

/** The ClusterPolicy, as an object for `kubectl create -f`. */
export function kyvernoPolicy() {
  const mongodbContainers = `request.object.spec.template.spec.containers[?${isMongodb('image')}]`;
  return {
    apiVersion: 'kyverno.io/v1',
    kind: 'ClusterPolicy',
    metadata: {
      name: POLICY_NAME,
      annotations: {
        'policies.kyverno.io/title': 'MongoDB replica sets (sts-guard, the part Kyverno can express)',
        'policies.kyverno.io/description':
          "sts-guard's replica-set, headless-service and bootstrap-hook rules for StatefulSets written with mongod's flags",
      },
    },
    spec: {
      // Every rule reads the request (request.namespace, an apiCall): admission only.
      background: false,
      admission: true,
      failurePolicy: 'Fail',
      webhookTimeoutSeconds: 5,
      rules: [
        {
          name: 'bootstrap-hook',
          match: statefulSets(['CREATE', 'UPDATE']),
          mutate: {
            foreach: [
              {
                list: 'request.object.spec.template.spec.containers',
                context: [
                  {
                    name: 'replicaSetName',
                    variable: {
                      jmesPath: `regex_replace_all('(?s)^.*--replSet[= ]+([^\\s;&|"]+).*$', ${argv('element')}, '$1')`,
                    },
                  },
                ],
                preconditions: {
                  all: [
                    { key: `{{ ${isMongodb('element.image')} }}`, operator: 'Equals', value: true },
                    {
                      key: `{{ contains(${argv('element')}, '--replSet') }}`,
                      operator: 'Equals',
                      value: true,
                    },
                    { key: "{{ element.lifecycle.postStart || '' }}", operator: 'Equals', value: '' },
                    { key: "{{ request.object.spec.serviceName || '' }}", operator: 'NotEquals', value: '' },
                  ],
                },
                patchStrategicMerge: {
                  spec: {
                    template: {
                      spec: {
                        containers: [
                          {
                            name: '{{ element.name }}',
                            lifecycle: {
                              postStart: { exec: { command: ['/bin/sh', '-c', kyvernoHookScript()] } },
                            },
                          },
                        ],
                      },
                    },
                  },
                },
              },
            ],
          },
        },
        {
          name: 'replica-set',
          match: statefulSets(['CREATE', 'UPDATE']),
          preconditions: {
            all: [{ key: '{{ request.object.spec.replicas || `1` }}', operator: 'GreaterThan', value: 1 }],
          },
          validate: {
            failureAction: 'Enforce',
            message:
              'StatefulSet {{ request.object.metadata.name }} runs MongoDB with {{ request.object.spec.replicas }} replicas but without --replSet: each pod would be a separate standalone database. Add --replSet <name> to the container args.',
            foreach: [
              {
                list: 'request.object.spec.template.spec.containers',
                preconditions: {
                  all: [{ key: `{{ ${isMongodb('element.image')} }}`, operator: 'Equals', value: true }],
                },
                deny: {
                  conditions: {
                    all: [
                      {
                        key: `{{ contains(${argv('element')}, '--replSet') }}`,
                        operator: 'Equals',
                        value: false,
                      },
                    ],
                  },
                },
              },
            ],
          },
        },
        {
          name: 'headless-service',
          match: statefulSets(['CREATE', 'UPDATE']),
          preconditions: {
            all: [
              { key: '{{ request.object.spec.replicas || `1` }}', operator: 'GreaterThan', value: 1 },
              { key: `{{ length(${mongodbContainers}) }}`, operator: 'GreaterThan', value: 0 },
            ],
          },
          context: [
            {
              name: 'clusterIP',
              apiCall: {
                urlPath:
                  "/api/v1/namespaces/{{ request.namespace }}/services/{{ request.object.spec.serviceName || '-' }}",
                jmesPath: "spec.clusterIP || ''",
                // A Service that does not exist (404) reads as not headless.
                default: '',
              },
            },
          ],
          validate: {
            failureAction: 'Enforce',
            message:
              'spec.serviceName "{{ request.object.spec.serviceName || \'\' }}" must name a headless Service (clusterIP: None) in namespace {{ request.namespace }}: the replica-set members find each other by its per-pod DNS names.',
            deny: {
              conditions: { all: [{ key: '{{ clusterIP }}', operator: 'NotEquals', value: 'None' }] },
            },
          },
        },
      ],
    },
  };
}
