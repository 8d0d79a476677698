// STAND-IN for mongod: the replica-set simulator (see below).
/**
 * A replica-set simulator (a stand-in: no real mongod exists on this machine). It models the N
 * pods of a MongoDB StatefulSet — data directory kept or lost, replica-set config with version,
 * term and replicaSetId, elections by majority, replication, DNS that resolves or lags — in the
 * cluster file the fake `mongosh`/`mongo` act on (server.ts answers their commands; `settle`
 * runs heartbeats, elections and replication between them). Pods start the way the StatefulSet
 * controller starts them (OrderedReady: one at a time, each after the previous one's postStart
 * returned; Parallel: all at once), and each start runs the real hook script, `/bin/sh -c
 * <script>`, through the fake shells: the script is never reimplemented here.
 *
 * Writes stand for acknowledged `w: majority` writes of a client with a seed list. Two checks
 * judge a run: no two replica sets of the same name exist on the volumes (a fork), and every
 * acknowledged write is on every primary while a majority of volumes survived.
 */
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { PolicySettings } from '../../../src/policy/index.js';
import { defaultSettings, replicaSet } from '../fixtures.js';
import { bootstrapScriptV2 } from './bootstrap-v2.js';
import {
  memberHost,
  type ShellFlavour,
  type SimulatedCluster,
  type SimulatedMember,
  simulatedCluster,
  simulatedMember,
  withCluster,
} from './cluster.js';
import { type HookRun, type Sandbox, sandbox } from './harness.js';
import { CREATED_AT, injectedHook } from './scenario.js';
import { inDns, member, primaryFor, serverCommand, settle } from './server.js';

export type PodManagementPolicy = 'OrderedReady' | 'Parallel';
export type HookVersion = 'v2' | 'v3';

export interface SimulationOptions {
  replicas: number;
  podManagementPolicy: PodManagementPolicy;
  hook: HookVersion;
  shell?: ShellFlavour;
}

const NAMESPACE = 'grade-submission';
/** How often kubelet reruns a failing postStart (it restarts the container) in one start. */
const CONTAINER_RESTARTS = 2;

const settings: PolicySettings = defaultSettings();

/** The StatefulSet the scenarios create: MongoDB 4.4 with `--replSet rs0`, behind mongodb-headless. */
const manifest = (replicas: number, annotations?: Record<string, string>): V1StatefulSet => {
  const sts = replicaSet({ replicas });
  if (annotations) sts.metadata = { ...sts.metadata, annotations };
  return sts;
};

/** The postStart command of `version`, stamped as sts-guard would for a CREATE at `createdAt`. */
function hookCommand(
  version: HookVersion,
  replicas: number,
  o: { createdAt: number; claimsExist?: boolean; resetToken?: string },
): string[] {
  if (version === 'v2') {
    const script = bootstrapScriptV2({
      replicaSetName: 'rs0',
      serviceName: 'mongodb-headless',
      namespace: NAMESPACE,
      clusterDomain: settings.clusterDomain,
      port: 27017,
    });
    return ['/bin/sh', '-c', script];
  }
  const claims = o.claimsExist
    ? [0, 1, 2].map((i) => ({ metadata: { name: `mongodb-data-mongodb-${i}` } }))
    : [];
  return injectedHook(
    manifest(replicas, o.resetToken ? { 'sts-guard.io/reset-replica-set': o.resetToken } : undefined),
    NAMESPACE,
    settings,
    { claims: { outcome: 'found', claims }, now: o.createdAt },
  );
}

export class ReplicaSetSimulation {
  readonly box: Sandbox;
  readonly shell: ShellFlavour;
  readonly options: SimulationOptions;
  replicas: number;
  /** The hook in the current pod template. */
  hook: string[];
  /** Labels of the writes acknowledged to a client (w: majority), still expected to survive. */
  acknowledged: string[] = [];
  /** Every hook run, in order, with its pod. */
  readonly runs: Array<{ pod: string; run: HookRun }> = [];

  private constructor(options: SimulationOptions) {
    this.options = options;
    this.shell = options.shell ?? 'mongosh';
    this.replicas = options.replicas;
    this.hook = hookCommand(options.hook, options.replicas, { createdAt: CREATED_AT });
    const cluster: SimulatedCluster = simulatedCluster([]);
    cluster.background = true;
    cluster.printsOnly = true;
    this.box = sandbox(cluster, [this.shell]);
  }

  /** The StatefulSet created from nothing: no claims existed, so v3 gets an initiation window. */
  static create(options: SimulationOptions): ReplicaSetSimulation {
    return new ReplicaSetSimulation(options);
  }

  remove(): void {
    this.box.remove();
  }

  cluster(): SimulatedCluster {
    return this.box.cluster();
  }

  private change<T>(fn: (cluster: SimulatedCluster) => T): T {
    return withCluster(`${this.box.dir}/cluster.json`, fn);
  }

  private pod(cluster: SimulatedCluster, ordinal: number): SimulatedMember {
    let found = cluster.members.find((m) => m.host === memberHost(ordinal));
    if (!found) {
      // A new ordinal: its claim is created with the pod, so the volume starts empty.
      found = simulatedMember(ordinal, { up: false, resolves: false });
      cluster.members.push(found);
    }
    return found;
  }

  /** Time passes for the pods: the shells' clock moves `seconds` ahead. */
  advanceClock(seconds: number): void {
    this.change((c) => {
      c.clockOffsetSeconds = (c.clockOffsetSeconds ?? 0) + seconds;
    });
  }

  /** Creates (or restarts) pod `ordinal` and runs its postStart hook until it returns. */
  private async startPod(ordinal: number, o: { dnsLag?: number } = {}): Promise<HookRun> {
    this.change((c) => {
      const m = this.pod(c, ordinal);
      m.up = true;
      m.resolves = true;
      m.dnsLag = o.dnsLag ?? 0;
      // mongod reads its stored config for a moment after it starts.
      m.startingUp = m.config ? 1 : 0;
    });
    const pod = `mongodb-${ordinal}`;
    let run: HookRun | undefined;
    for (let attempt = 0; attempt <= CONTAINER_RESTARTS; attempt++) {
      run = await this.box.run(this.hook, { pod, shSleepSeconds: 0.02 });
      this.runs.push({ pod, run });
      if (run.exitCode === 0) break;
    }
    return run as HookRun;
  }

  /**
   * Starts pods as the StatefulSet controller does: OrderedReady one after another (each once the
   * previous postStart returned: the pods here have no readiness probe), Parallel all at once.
   */
  async start(ordinals: number[], o: { dnsLag?: number } = {}): Promise<HookRun[]> {
    if (this.options.podManagementPolicy === 'Parallel') {
      return Promise.all(ordinals.map((i) => this.startPod(i, o)));
    }
    const runs: HookRun[] = [];
    for (const i of [...ordinals].sort((a, b) => a - b)) runs.push(await this.startPod(i, o));
    return runs;
  }

  /** Starts pods in exactly this order, each after the previous one's hook returned. */
  async startInOrder(ordinals: number[]): Promise<void> {
    for (const i of ordinals) await this.startPod(i);
  }

  /** The pods are deleted (their claims stay): mongod stops and the DNS records go. */
  stop(ordinals: number[]): void {
    this.change((c) => {
      for (const i of ordinals) Object.assign(this.pod(c, i), { up: false, resolves: false });
      settle(c);
    });
  }

  /** A pod's volume is gone (deleted claim, failed disk): its next start finds an empty data directory. */
  loseVolume(ordinal: number): void {
    this.change((c) => {
      const m = this.pod(c, ordinal);
      m.config = null;
      m.data = [];
      c.primaries = c.primaries.filter((h) => h !== m.host);
    });
  }

  /** Heartbeats, elections and replication catch up. */
  settle(): void {
    this.change((c) => settle(c));
  }

  /**
   * A client with the seed list of every member writes with w: majority: the first member that
   * names a primary routes it there; it is acknowledged when that primary's set has a majority of
   * its voters up (they all get it). Returns whether it was acknowledged.
   */
  write(label: string): boolean {
    const acknowledged = this.change((c) => {
      settle(c);
      for (const seed of c.members) {
        if (!seed.up || !inDns(seed)) continue;
        const primaryHost = primaryFor(c, seed.config);
        const primary = primaryHost ? member(c, primaryHost) : undefined;
        if (!primary?.config) continue;
        const voters = primary.config.members.filter((m) => m.votes > 0);
        const upVoters = voters.filter((v) => {
          const m = member(c, v.host);
          const sameSet = m?.config?.settings?.replicaSetId === primary.config?.settings?.replicaSetId;
          return m?.up === true && inDns(m) && sameSet;
        });
        if (upVoters.length <= voters.length / 2) return false;
        primary.data.push(label);
        settle(c);
        return true;
      }
      return false;
    });
    if (acknowledged) this.acknowledged.push(label);
    return acknowledged;
  }

  /** Writes `n` labelled writes, each of which must be acknowledged. */
  writeMany(prefix: string, n = 3): boolean {
    let all = true;
    for (let i = 0; i < n; i++) all = this.write(`${prefix}-${i}`) && all;
    return all;
  }

  /** The operator's `rs.remove(host)` on the primary after scaling down. */
  removeMember(ordinal: number): void {
    this.change((c) => {
      settle(c);
      const primaryHost = c.primaries.find((h) => member(c, h)?.up);
      const primary = primaryHost ? member(c, primaryHost) : undefined;
      if (!primaryHost || !primary?.config) throw new Error('no primary to remove a member through');
      const next = structuredClone(primary.config);
      next.members = next.members.filter((m) => m.host !== memberHost(ordinal));
      next.version += 1;
      for (const m of next.members) delete m.newlyAdded;
      const answer = serverCommand(c, primaryHost, { replSetReconfig: next });
      if (answer.ok !== 1) throw new Error(`rs.remove failed: ${String(answer.errmsg)}`);
    });
  }

  /** Scales to `replicas`: new ordinals start (their volumes are new or retained), removed ones stop. */
  async scale(replicas: number): Promise<void> {
    const before = this.replicas;
    this.replicas = replicas;
    if (replicas > before) await this.start(range(before, replicas));
    else this.stop(range(replicas, before));
    this.settle();
  }

  /** Restarts every pod, the highest ordinal first, each after the previous one is back. */
  async rollingRestart(): Promise<void> {
    for (const i of range(0, this.replicas).reverse()) {
      this.stop([i]);
      this.write(`during-rolling-restart-of-${i}`);
      await this.startPod(i);
      this.settle();
    }
  }

  /**
   * `kubectl delete statefulset` (claims retained) and apply again: the new StatefulSet's CREATE
   * finds the claims, so v3's hook gets no initiation window.
   */
  recreate(): void {
    this.stop(range(0, this.replicas));
    this.hook = hookCommand(this.options.hook, this.replicas, {
      createdAt: CREATED_AT + (this.cluster().clockOffsetSeconds ?? 0),
      claimsExist: true,
    });
  }

  /**
   * The deliberate reset of docs/operations.md: annotate sts-guard.io/reset-replica-set; the
   * mutating webhook reopens the window in the pod template, so the pods roll to the new hook.
   */
  annotateReset(token: string): void {
    this.hook = hookCommand(this.options.hook, this.replicas, {
      createdAt: CREATED_AT + (this.cluster().clockOffsetSeconds ?? 0),
      claimsExist: true,
      resetToken: token,
    });
  }

  /** The distinct replica sets (replicaSetIds) named rs0 on all volumes, up or not. */
  replicaSets(): string[] {
    const ids = this.cluster().members.flatMap((m) =>
      m.config?._id === 'rs0' && m.config.settings ? [m.config.settings.replicaSetId] : [],
    );
    return [...new Set(ids)];
  }

  /** The members that are primary now, one per replica set. */
  primaries(): string[] {
    const c = this.cluster();
    return c.primaries.filter((h) => primaryFor(c, member(c, h)?.config ?? null) === h);
  }

  /** Acknowledged writes some primary of rs0 lacks (all of them when there is no primary). */
  missingWrites(): string[] {
    const c = this.cluster();
    const primaries = this.primaries().map((h) => member(c, h) as SimulatedMember);
    if (primaries.length === 0) return [...this.acknowledged];
    return this.acknowledged.filter((w) => primaries.some((p) => !p.data.includes(w)));
  }

  /** The members in the config of the (first) primary. */
  configHosts(): string[] {
    const c = this.cluster();
    const p = this.primaries()[0];
    return (p ? member(c, p)?.config?.members.map((m) => m.host) : undefined) ?? [];
  }

  /** What the hooks of `pod` printed. */
  printed(pod: string): string[] {
    return this.cluster().events.flatMap((e) => (e.kind === 'print' && e.from === pod ? [e.text] : []));
  }
}

export const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
