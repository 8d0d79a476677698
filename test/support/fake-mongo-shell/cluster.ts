// STAND-IN for mongod: part of the simulated replica set the real bootstrap hook runs against (no MongoDB server binary exists on these machines).
/**
 * The simulated replica set the fake `mongosh`/`mongo` executables act on. It lives in one JSON
 * file shared by every fake shell process of a test (hooks of several pods may run at once), so
 * each command reads, changes and writes it under a lock.
 */
import { mkdirSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';

/** A member as `replSetGetConfig` shows it, every field filled in the way mongod fills defaults. */
export interface MemberConfig {
  _id: number;
  host: string;
  arbiterOnly: boolean;
  buildIndexes: boolean;
  hidden: boolean;
  priority: number;
  tags: Record<string, string>;
  secondaryDelaySecs: number;
  votes: number;
  /** Set by mongod ≥ 4.4 on a voting member it just added; `replSetGetConfig` hides it. */
  newlyAdded?: boolean;
}

export interface ReplicaSetConfig {
  _id: string;
  version: number;
  term: number;
  protocolVersion: number;
  members: MemberConfig[];
  /** mongod's `settings.replicaSetId`: a new one per replSetInitiate, so two sets of one name differ. */
  settings?: { replicaSetId: string };
}

/** One pod's mongod as the rest of the cluster sees it. */
export interface SimulatedMember {
  pod: string;
  /** `<pod>.<service>.<namespace>.svc.<domain>:<port>` */
  host: string;
  /** The pod's DNS record exists (the pod exists and the headless Service publishes it). */
  resolves: boolean;
  /** mongod accepts connections on its port. */
  up: boolean;
  /** mongod is still starting: the local shell's connection is refused this many more times. */
  refusesConnections: number;
  /** The `--replSet` mongod runs with; null when it runs standalone. */
  replSetName: string | null;
  /** local.system.replset; null for an empty data directory. */
  config: ReplicaSetConfig | null;
  /** mongod is still loading its stored config: this many more `replSetGetStatus` calls answer NotYetInitialized. */
  startingUp: number;
  /** Access control is on: replica-set commands need a user, which the hook does not have. */
  auth: boolean;
  /** The pod's IP: what the headless Service's DNS name resolves to. */
  ip: string;
  /** DNS lags the pod: this many more `getent` look-ups (by anyone) do not list it yet. */
  dnsLag: number;
  /** The writes this member's data directory holds, in order (the simulation's oplog). */
  data: string[];
}

/** A connection or a command, in the order the fake shells performed them. */
export type ClusterEvent =
  | { kind: 'connect'; from: string; shell: ShellFlavour; to: string; ok: boolean }
  | {
      kind: 'command';
      from: string;
      shell: ShellFlavour;
      to: string;
      name: string;
      body: unknown;
      ok: boolean;
      code?: number;
    }
  | { kind: 'print'; from: string; shell: ShellFlavour; text: string }
  | { kind: 'sleep'; from: string; shell: ShellFlavour; ms: number };

export type ShellFlavour = 'mongosh' | 'mongo';

export interface SimulatedCluster {
  port: number;
  /**
   * The members that are primary, at most one per replica set (`settings.replicaSetId`): more
   * than one only when a set was forked. A member names the one of its own set.
   */
  primaries: string[];
  /** An election in progress: after this many more `isMaster` answers, `winner` is primary. */
  election: { winner: string; remainingIsMasterCalls: number } | null;
  /** How many `isMaster` answers a fresh replSetInitiate's election takes (0: immediate). */
  electionDelay: number;
  members: SimulatedMember[];
  events: ClusterEvent[];
  /** How many sets replSetInitiate created: the source of new replicaSetIds. */
  initiated: number;
  /**
   * Heartbeats, elections and replication run before every command (the replica-set simulator);
   * off for the single-hook tests, whose elections are scripted with `election`.
   */
  background?: boolean;
  /** Record only what the hooks print (long simulations would otherwise fill the file). */
  printsOnly?: boolean;
  /** Seconds the shells' clock (`new Date()` in the hook's JS) is ahead of the real one. */
  clockOffsetSeconds?: number;
}

export interface MemberNaming {
  statefulSet: string;
  serviceName: string;
  namespace: string;
  clusterDomain: string;
  port: number;
}

export const defaultNaming: MemberNaming = {
  statefulSet: 'mongodb',
  serviceName: 'mongodb-headless',
  namespace: 'grade-submission',
  clusterDomain: 'cluster.local',
  port: 27017,
};

export const podName = (ordinal: number, naming: MemberNaming = defaultNaming) =>
  `${naming.statefulSet}-${ordinal}`;

/** The stable DNS name and port Kubernetes gives a StatefulSet pod behind a headless Service. */
export const memberHost = (ordinal: number, naming: MemberNaming = defaultNaming) =>
  `${podName(ordinal, naming)}.${naming.serviceName}.${naming.namespace}.svc.${naming.clusterDomain}:${naming.port}`;

/** mongod's defaults for a member document given to replSetInitiate/replSetReconfig. */
export function memberWithDefaults(
  given: Partial<MemberConfig> & { _id: number; host: string },
): MemberConfig {
  const arbiterOnly = given.arbiterOnly ?? false;
  return {
    _id: given._id,
    host: given.host,
    arbiterOnly,
    buildIndexes: given.buildIndexes ?? true,
    hidden: given.hidden ?? false,
    priority: given.priority ?? (arbiterOnly ? 0 : 1),
    tags: given.tags ?? {},
    secondaryDelaySecs: given.secondaryDelaySecs ?? 0,
    votes: given.votes ?? 1,
    ...(given.newlyAdded ? { newlyAdded: true } : {}),
  };
}

/** A pod of the StatefulSet: by default it exists, its mongod runs with `--replSet rs0`, its data dir is empty. */
export function simulatedMember(
  ordinal: number,
  o: Partial<Omit<SimulatedMember, 'pod' | 'host'>> = {},
  naming: MemberNaming = defaultNaming,
): SimulatedMember {
  return {
    pod: podName(ordinal, naming),
    host: memberHost(ordinal, naming),
    resolves: true,
    up: true,
    refusesConnections: 0,
    replSetName: 'rs0',
    config: null,
    startingUp: 0,
    auth: false,
    ip: `10.244.${Math.floor(ordinal / 200)}.${(ordinal % 200) + 10}`,
    dnsLag: 0,
    data: [],
    ...o,
  };
}

/** A cluster whose pods are `members`, with no replica set configured yet. */
export function simulatedCluster(members: SimulatedMember[], port = defaultNaming.port): SimulatedCluster {
  return { port, primaries: [], election: null, electionDelay: 0, members, events: [], initiated: 0 };
}

/**
 * A replica set that already runs: the pods at `memberOrdinals` share one config (version
 * `version`), `primaryOrdinal` is primary. Other pods listed in `extraPods` exist with empty data.
 */
export function runningReplicaSet(o: {
  memberOrdinals: number[];
  primaryOrdinal: number;
  extraPods?: SimulatedMember[];
  version?: number;
  naming?: MemberNaming;
  voting?: (ordinal: number) => boolean;
}): SimulatedCluster {
  const naming = o.naming ?? defaultNaming;
  const config: ReplicaSetConfig = {
    _id: 'rs0',
    version: o.version ?? o.memberOrdinals.length,
    term: 1,
    protocolVersion: 1,
    settings: { replicaSetId: 'set-0' },
    members: o.memberOrdinals.map((ordinal) => {
      const voting = o.voting ? o.voting(ordinal) : true;
      return memberWithDefaults({
        _id: ordinal,
        host: memberHost(ordinal, naming),
        ...(voting ? {} : { votes: 0, priority: 0 }),
      });
    }),
  };
  const members = o.memberOrdinals.map((ordinal) =>
    simulatedMember(ordinal, { config: structuredClone(config) }, naming),
  );
  const cluster = simulatedCluster([...members, ...(o.extraPods ?? [])], naming.port);
  cluster.primaries = [memberHost(o.primaryOrdinal, naming)];
  return cluster;
}

export function readCluster(file: string): SimulatedCluster {
  return JSON.parse(readFileSync(file, 'utf8')) as SimulatedCluster;
}

export function writeCluster(file: string, cluster: SimulatedCluster): void {
  // Write-then-rename so a concurrent reader never sees half a file.
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, JSON.stringify(cluster, null, 2));
  renameSync(partial, file);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Runs `change` on the cluster file while holding its lock (a directory: mkdir is atomic). */
export function withCluster<T>(file: string, change: (cluster: SimulatedCluster) => T): T {
  const lock = `${file}.lock`;
  for (let tries = 0; ; tries++) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 5000) throw error;
      Atomics.wait(pause, 0, 0, 2);
    }
  }
  try {
    const cluster = readCluster(file);
    try {
      return change(cluster);
    } finally {
      // Kept even when `change` throws (a refused connection is still recorded).
      writeCluster(file, cluster);
    }
  } finally {
    rmdirSync(lock);
  }
}
