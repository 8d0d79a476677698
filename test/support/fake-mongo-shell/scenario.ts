/** Helpers the bootstrap-hook tests share: the injected hook, the shells to run it under, event queries. */
import { existsSync, realpathSync } from 'node:fs';
import type { V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import {
  type JsonPatchOperation,
  type MutationLookups,
  mutateStatefulSet,
  type PolicySettings,
} from '../../../src/policy/index.js';
import { defaultSettings, newStatefulSetLookups, replicaSet } from '../fixtures.js';
import type { ClusterEvent, SimulatedCluster, SimulatedMember } from './cluster.js';

/**
 * When this test process "created" its StatefulSets: the hooks run against the real clock, so
 * their initiation window starts now; one value per process keeps injected hooks comparable.
 */
export const CREATED_AT = Math.floor(Date.now() / 1000);

/**
 * The postStart exec command the mutating webhook injects into `sts` at its CREATE (applied as
 * the API server would); `lookups` says what the claim look-up found (default: no claims, a new set).
 */
export function injectedHook(
  sts: V1StatefulSet = replicaSet(),
  namespace = 'grade-submission',
  settings: PolicySettings = defaultSettings(),
  lookups: MutationLookups = newStatefulSetLookups(CREATED_AT),
): string[] {
  const mutation = mutateStatefulSet({ operation: 'CREATE', namespace, object: sts }, settings, lookups);
  const patched = jsonpatch.applyPatch(
    structuredClone(sts),
    mutation.patch as JsonPatchOperation[] as jsonpatch.Operation[],
    true,
    false,
  ).newDocument;
  const command = patched.spec?.template.spec?.containers[0]?.lifecycle?.postStart?.exec?.command;
  if (!command) throw new Error('the mutation injected no postStart exec hook');
  return command;
}

export interface Interpreter {
  path: string;
  /** e.g. `/bin/sh (dash)` */
  name: string;
}

/** /bin/sh (what the hook names), plus dash and bash when installed and not the same program. */
export function interpreters(): Interpreter[] {
  const seen = new Map<string, string>();
  for (const path of ['/bin/sh', '/usr/bin/dash', '/bin/dash', '/bin/bash', '/usr/bin/bash']) {
    if (!existsSync(path)) continue;
    const real = realpathSync(path);
    if (!seen.has(real)) seen.set(real, path);
  }
  return [...seen.entries()].map(([real, path]) => ({ path, name: `${path} (${real.split('/').pop()})` }));
}

export type CommandEvent = Extract<ClusterEvent, { kind: 'command' }>;

/** Commands the fake shells sent, optionally only those named `name`. */
export const commands = (cluster: SimulatedCluster, name?: string): CommandEvent[] =>
  cluster.events.filter(
    (e): e is CommandEvent => e.kind === 'command' && (name === undefined || e.name === name),
  );

/** What the hook printed in `pod`'s container. */
export const printed = (cluster: SimulatedCluster, pod: string): string[] =>
  cluster.events.flatMap((e) => (e.kind === 'print' && e.from === pod ? [e.text] : []));

export function memberOf(cluster: SimulatedCluster, pod: string): SimulatedMember {
  const found = cluster.members.find((m) => m.pod === pod);
  if (!found) throw new Error(`no pod ${pod} in the simulated cluster`);
  return found;
}

/** The member hosts in `pod`'s replica-set config, in order. */
export const configHosts = (cluster: SimulatedCluster, pod: string): string[] | undefined =>
  memberOf(cluster, pod).config?.members.map((m) => m.host);
