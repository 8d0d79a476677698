// STAND-IN for mongod: part of the simulated replica set the real bootstrap hook runs against (no MongoDB server binary exists on these machines).
/**
 * What a mongod answers to the commands the bootstrap hook sends, modelled on the server's
 * replication code (error codes and messages as mongod 4.4–7.0 return them). Pure over the
 * cluster value: the fake shell loads it, calls `serverCommand`, and saves it.
 */
import {
  type MemberConfig,
  memberWithDefaults,
  type ReplicaSetConfig,
  type SimulatedCluster,
  type SimulatedMember,
} from './cluster.js';

export type CommandResult = Record<string, unknown> & { ok: 0 | 1 };

const MAX_VOTING_MEMBERS = 7;
const MAX_MEMBERS = 50;

export const ErrorCodes = {
  Unauthorized: 13,
  AlreadyInitialized: 23,
  CommandNotFound: 59,
  NodeNotFound: 74,
  NoReplicationEnabled: 76,
  InvalidReplicaSetConfig: 93,
  NotYetInitialized: 94,
  NewReplicaSetConfigurationIncompatible: 103,
  NotWritablePrimary: 10107,
} as const;

const codeNames = Object.fromEntries(Object.entries(ErrorCodes).map(([name, code]) => [code, name]));

function failure(code: number, errmsg: string): CommandResult {
  return { ok: 0, errmsg, code, codeName: codeNames[code] ?? 'UnknownError' };
}

const isAddress = (host: string) => /^(\d+\.){3}\d+:\d+$/.test(host);

/** The member at `host`: its DNS name and port, or its pod IP and port. */
export const member = (cluster: SimulatedCluster, host: string) =>
  cluster.members.find((m) => m.host === host || `${m.ip}:${cluster.port}` === host);

/** True when DNS answers for the member: its pod exists and the record has propagated. */
export const inDns = (m: SimulatedMember) => m.resolves && m.dnsLag <= 0;

/** Why a connection to `host` fails, or undefined when mongod there accepts it. */
export function connectionFailure(cluster: SimulatedCluster, host: string): string | undefined {
  const target = member(cluster, host);
  if (isAddress(host)) {
    if (!target?.resolves) return `connect EHOSTUNREACH ${host}`;
  } else if (!target || !inDns(target)) return `HostNotFound: Could not find address for ${host}`;
  if (!target.up) return `Connection refused: ${host}`;
  return undefined;
}

const setIdOf = (config: ReplicaSetConfig | null | undefined) => config?.settings?.replicaSetId;

/**
 * The primary `config`'s members follow: a primary that is up, still holds a config of the same
 * set (same replicaSetId) and is listed in `config`. A fork has one primary per set.
 */
export function primaryFor(cluster: SimulatedCluster, config: ReplicaSetConfig | null): string | undefined {
  if (!config) return undefined;
  return cluster.primaries.find((host) => {
    const p = member(cluster, host);
    const held = p ? loadedConfig(p) : null;
    return p?.up === true && held !== null && setIdOf(held) === setIdOf(config) && isInConfig(config, host);
  });
}

/** Makes `host` the primary of its set, replacing the set's previous primary. */
function becomePrimary(cluster: SimulatedCluster, host: string): void {
  const self = member(cluster, host);
  const setId = setIdOf(self?.config);
  cluster.primaries = cluster.primaries.filter((h) => {
    const other = member(cluster, h);
    // A primary that lost its data (no config) is no primary of any set.
    return h !== host && other?.config != null && setIdOf(other.config) !== setId;
  });
  cluster.primaries.push(host);
}

/** The config mongod has loaded, or null while it has none (empty data dir, or still starting up). */
function loadedConfig(m: SimulatedMember): ReplicaSetConfig | null {
  return m.startingUp > 0 ? null : m.config;
}

const isInConfig = (config: ReplicaSetConfig | null, host: string) =>
  config?.members.some((c) => c.host === host) ?? false;

/** Advances an election in progress by one isMaster answer. */
function tickElection(cluster: SimulatedCluster): void {
  if (!cluster.election) return;
  cluster.election.remainingIsMasterCalls -= 1;
  if (cluster.election.remainingIsMasterCalls <= 0) {
    becomePrimary(cluster, cluster.election.winner);
    cluster.election = null;
  }
}

function isMaster(cluster: SimulatedCluster, self: SimulatedMember): CommandResult {
  tickElection(cluster);
  if (!self.replSetName) return { ismaster: true, maxWireVersion: 9, ok: 1 };
  const config = loadedConfig(self);
  if (!config || !isInConfig(config, self.host)) {
    return {
      ismaster: false,
      secondary: false,
      info: 'Does not have a valid replica set config',
      isreplicaset: true,
      maxWireVersion: 9,
      ok: 1,
    };
  }
  const primary = primaryFor(cluster, config);
  const visible = config.members.filter((m) => !m.hidden && !m.arbiterOnly);
  return {
    hosts: visible.filter((m) => m.priority > 0).map((m) => m.host),
    passives: visible.filter((m) => m.priority === 0).map((m) => m.host),
    setName: config._id,
    setVersion: config.version,
    ismaster: primary === self.host,
    secondary: primary !== self.host,
    ...(primary ? { primary } : {}),
    me: self.host,
    maxWireVersion: 9,
    ok: 1,
  };
}

function replSetGetStatus(cluster: SimulatedCluster, self: SimulatedMember): CommandResult {
  if (!self.replSetName) return failure(ErrorCodes.NoReplicationEnabled, 'not running with --replSet');
  if (self.auth) return failure(ErrorCodes.Unauthorized, 'command replSetGetStatus requires authentication');
  if (self.startingUp > 0) {
    self.startingUp -= 1;
    return failure(ErrorCodes.NotYetInitialized, 'no replset config has been received');
  }
  const config = self.config;
  if (!config) return failure(ErrorCodes.NotYetInitialized, 'no replset config has been received');
  if (!isInConfig(config, self.host)) {
    return failure(
      ErrorCodes.InvalidReplicaSetConfig,
      'Our replica set config is invalid or we are not a member of it',
    );
  }
  const primary = primaryFor(cluster, config);
  return {
    set: config._id,
    myState: primary === self.host ? 1 : 2,
    members: config.members.map((m) => ({
      _id: m._id,
      name: m.host,
      stateStr: primary === m.host ? 'PRIMARY' : 'SECONDARY',
    })),
    ok: 1,
  };
}

function replSetGetConfig(self: SimulatedMember): CommandResult {
  if (self.auth) return failure(ErrorCodes.Unauthorized, 'command replSetGetConfig requires authentication');
  const config = loadedConfig(self);
  if (!config) return failure(ErrorCodes.NotYetInitialized, 'no replset config has been received');
  // newlyAdded is internal: hidden from replSetGetConfig, refused by replSetReconfig.
  const shown = structuredClone(config);
  for (const m of shown.members) delete m.newlyAdded;
  return { config: shown, ok: 1 };
}

const MEMBER_FIELDS = new Set([
  '_id',
  'host',
  'arbiterOnly',
  'buildIndexes',
  'hidden',
  'priority',
  'tags',
  'secondaryDelaySecs',
  'votes',
]);

/** The checks `ReplSetConfig::validate` makes, as far as the hook's configs can violate them. */
function parseConfig(
  raw: unknown,
  replSetName: string,
  verb: 'initiate' | 'reconfigure',
): { config: ReplicaSetConfig } | { error: CommandResult } {
  const invalid = (errmsg: string) => ({ error: failure(ErrorCodes.InvalidReplicaSetConfig, errmsg) });
  if (typeof raw !== 'object' || raw === null) return invalid('config must be an object');
  const given = raw as Record<string, unknown>;
  if (given._id !== replSetName) {
    return invalid(
      `Attempting to ${verb} a replica set with name ${String(given._id)}, but command line reports ${replSetName}; rejecting`,
    );
  }
  if (!Array.isArray(given.members) || given.members.length === 0) {
    return invalid('Replica set configuration must contain at least one member');
  }
  if (given.members.length > MAX_MEMBERS) {
    return invalid(
      `Replica set configuration contains ${given.members.length} members, but must be at most 50`,
    );
  }
  const members: MemberConfig[] = [];
  for (const entry of given.members as Record<string, unknown>[]) {
    for (const field of Object.keys(entry)) {
      if (field === 'newlyAdded')
        return invalid('Cannot provide newlyAdded field to member config during reconfig');
      if (!MEMBER_FIELDS.has(field))
        return invalid(`Unexpected field ${field} in replica set member configuration`);
    }
    if (!Number.isInteger(entry._id) || (entry._id as number) < 0)
      return invalid('member _id must be a non-negative integer');
    if (typeof entry.host !== 'string' || !/^[^:]+:\d+$/.test(entry.host)) {
      return invalid(`member host must be "host:port", not ${JSON.stringify(entry.host)}`);
    }
    const m = memberWithDefaults(entry as Partial<MemberConfig> & { _id: number; host: string });
    if (m.votes !== 0 && m.votes !== 1) return invalid(`votes must be 0 or 1, not ${m.votes}`);
    if (m.votes === 0 && m.priority !== 0) return invalid('priority must be 0 when non-voting (votes:0)');
    if (members.some((o) => o._id === m._id))
      return invalid(`Found two member configurations with same _id field, members.${m._id}`);
    if (members.some((o) => o.host === m.host))
      return invalid(`Found two member configurations with same host field, ${m.host}`);
    members.push(m);
  }
  const voters = members.filter((m) => m.votes > 0).length;
  if (voters < 1 || voters > MAX_VOTING_MEMBERS) {
    return invalid(
      `Replica set configuration contains ${voters} voting members, but must be at least 1 and no more than ${MAX_VOTING_MEMBERS}`,
    );
  }
  const version = given.version === undefined ? 1 : Number(given.version);
  if (!Number.isInteger(version) || version < 1)
    return invalid('version field value must be a positive integer');
  return { config: { _id: replSetName, version, term: 0, protocolVersion: 1, members } };
}

/** A new config reaches every running member it lists by heartbeat; the simulation delivers it at once. */
function deliverByHeartbeat(cluster: SimulatedCluster, config: ReplicaSetConfig): void {
  for (const m of cluster.members) {
    // A member of another set of the same name (a fork) refuses heartbeats with a different replicaSetId.
    const foreign = m.config !== null && setIdOf(m.config) !== setIdOf(config);
    // Peers reach it by its DNS name, so a member whose record lags gets it later.
    if (m.up && inDns(m) && !foreign && m.replSetName === config._id && isInConfig(config, m.host)) {
      if (m.config && m.config.version > config.version) continue;
      m.config = structuredClone(config);
      m.startingUp = 0;
    }
  }
}

const reachable = (cluster: SimulatedCluster, host: string) => connectionFailure(cluster, host) === undefined;

function replSetInitiate(cluster: SimulatedCluster, self: SimulatedMember, raw: unknown): CommandResult {
  if (!self.replSetName)
    return failure(ErrorCodes.NoReplicationEnabled, 'This node was not started with replication enabled.');
  if (self.auth) return failure(ErrorCodes.Unauthorized, 'command replSetInitiate requires authentication');
  if (self.config || self.startingUp > 0)
    return failure(ErrorCodes.AlreadyInitialized, 'already initialized');
  const parsed = parseConfig(raw, self.replSetName, 'initiate');
  if ('error' in parsed) return parsed.error;
  const config = {
    ...parsed.config,
    term: 1,
    settings: { replicaSetId: `set-${(cluster.initiated ?? 0) + 1}` },
  };
  if (!isInConfig(config, self.host)) {
    return failure(
      ErrorCodes.InvalidReplicaSetConfig,
      `No host described in new configuration with {version: ${config.version}, term: 0} for replica set ${config._id} maps to this node`,
    );
  }
  // replSetInitiate's quorum check needs every proposed member up and without a config of its own.
  for (const m of config.members) {
    const peer = member(cluster, m.host);
    if (m.host === self.host) continue;
    if (!peer || !reachable(cluster, m.host) || peer.config || peer.replSetName !== config._id) {
      return failure(
        ErrorCodes.NodeNotFound,
        `replSetInitiate quorum check failed because not all proposed set members responded affirmatively: ${m.host} failed`,
      );
    }
  }
  cluster.initiated = (cluster.initiated ?? 0) + 1;
  self.config = config;
  deliverByHeartbeat(cluster, config);
  if (cluster.electionDelay > 0) {
    cluster.election = { winner: self.host, remainingIsMasterCalls: cluster.electionDelay };
  } else {
    becomePrimary(cluster, self.host);
  }
  return { ok: 1 };
}

function replSetReconfig(cluster: SimulatedCluster, self: SimulatedMember, raw: unknown): CommandResult {
  if (!self.replSetName) return failure(ErrorCodes.NoReplicationEnabled, 'not running with --replSet');
  if (self.auth) return failure(ErrorCodes.Unauthorized, 'command replSetReconfig requires authentication');
  const current = loadedConfig(self);
  if (!current) return failure(ErrorCodes.NotYetInitialized, 'no replset config has been received');
  if (primaryFor(cluster, current) !== self.host) {
    return failure(
      ErrorCodes.NotWritablePrimary,
      'New config is rejected :: caused by :: replSetReconfig should only be run on a writable PRIMARY. Current state SECONDARY;',
    );
  }
  const parsed = parseConfig(raw, self.replSetName, 'reconfigure');
  if ('error' in parsed) return parsed.error;
  const given = (raw as { settings?: { replicaSetId?: unknown } }).settings;
  if (given?.replicaSetId !== undefined && given.replicaSetId !== setIdOf(current)) {
    return failure(
      ErrorCodes.NewReplicaSetConfigurationIncompatible,
      'New and old configurations differ in replica set ID',
    );
  }
  const next = {
    ...parsed.config,
    term: current.term,
    ...(current.settings ? { settings: current.settings } : {}),
  };
  const incompatible = (errmsg: string) => failure(ErrorCodes.NewReplicaSetConfigurationIncompatible, errmsg);
  if (next.version <= current.version) {
    return incompatible(
      `New replica set configuration version must be greater than old, but ${next.version} is not greater than ${current.version} for replica set ${next._id}`,
    );
  }
  for (const m of next.members) {
    const old = current.members.find((o) => o.host === m.host);
    if (old && old._id !== m._id) {
      return incompatible(
        `New and old configurations both have members with host of ${m.host} but in the new configuration the _id field is ${m._id} and in the old configuration it is ${old._id} for replica set ${next._id}`,
      );
    }
  }
  // Safe reconfig (4.4+): at most one voting member added or removed per reconfig.
  const voters = (c: ReplicaSetConfig) => new Set(c.members.filter((m) => m.votes > 0).map((m) => m.host));
  const before = voters(current);
  const after = voters(next);
  const changed =
    [...after].filter((h) => !before.has(h)).length + [...before].filter((h) => !after.has(h)).length;
  if (changed > 1) return incompatible('Rejecting reconfig that adds or removes more than one voting member');
  // Quorum check: a majority of the new config's voting members must answer heartbeats.
  const answering = [...after].filter((h) => reachable(cluster, h)).length;
  if (answering <= after.size / 2) {
    return failure(
      ErrorCodes.NodeNotFound,
      `Quorum check failed because not enough voting nodes responded; required ${Math.floor(after.size / 2) + 1} but only ${answering} responded`,
    );
  }
  for (const m of next.members) {
    if (m.votes > 0 && !before.has(m.host)) m.newlyAdded = true;
  }
  self.config = next;
  deliverByHeartbeat(cluster, next);
  return { ok: 1 };
}

/** mongod's answer to `command` sent to the member at `host` (a connection to it exists). */
export function serverCommand(
  cluster: SimulatedCluster,
  host: string,
  command: Record<string, unknown>,
): CommandResult {
  const self = member(cluster, host);
  if (!self) throw new Error(`no simulated member ${host}`);
  if (cluster.background) settle(cluster);
  const name = Object.keys(command)[0] ?? '';
  switch (name) {
    case 'ping':
      return { ok: 1 };
    case 'isMaster':
    case 'ismaster':
    case 'hello':
      return isMaster(cluster, self);
    case 'replSetGetStatus':
      return replSetGetStatus(cluster, self);
    case 'replSetGetConfig':
      return replSetGetConfig(self);
    case 'replSetInitiate':
      return replSetInitiate(cluster, self, command.replSetInitiate);
    case 'replSetReconfig':
      return replSetReconfig(cluster, self, command.replSetReconfig);
    default:
      return failure(ErrorCodes.CommandNotFound, `no such command: '${name}'`);
  }
}

/** The members of one replica set (of a possible fork) that its peers can reach by name. */
function setMembers(cluster: SimulatedCluster, setId: string | undefined): SimulatedMember[] {
  return cluster.members.filter((m) => {
    const c = loadedConfig(m);
    return m.up && inDns(m) && c !== null && setIdOf(c) === setId && isInConfig(c, m.host);
  });
}

/**
 * What mongod does by itself between commands, for the replica-set simulator: heartbeats carry
 * the newest config to listed members (an empty one adopts it), a set with a majority of its
 * voters up elects the member with the most data, a primary without a majority steps down, and
 * members copy their primary's data (initial sync, replication).
 */
export function settle(cluster: SimulatedCluster): void {
  for (const m of cluster.members) {
    if (m.up && m.startingUp > 0 && m.config) m.startingUp = 0;
  }
  const setIds = new Set(
    cluster.members.map((m) => setIdOf(loadedConfig(m))).filter((id) => id !== undefined),
  );
  for (const setId of setIds) {
    const holders = setMembers(cluster, setId);
    const newest = holders.map((m) => m.config as ReplicaSetConfig).sort((a, b) => b.version - a.version)[0];
    if (!newest) continue;
    deliverByHeartbeat(cluster, newest);
    // A member removed by a newer config learns it from the heartbeats it still sends (REMOVED).
    for (const m of holders) {
      if (m.config && m.config.version < newest.version) m.config = structuredClone(newest);
    }
    const current = setMembers(cluster, setId);
    const voters = newest.members.filter((m) => m.votes > 0).map((m) => m.host);
    const upVoters = current.filter((m) => voters.includes(m.host));
    const hasMajority = upVoters.length > voters.length / 2;
    let primary = primaryFor(cluster, newest);
    if (primary && !hasMajority) {
      cluster.primaries = cluster.primaries.filter((h) => h !== primary);
      primary = undefined;
    }
    if (!primary && hasMajority) {
      const electable = upVoters.filter(
        (m) => (newest.members.find((c) => c.host === m.host)?.priority ?? 0) > 0,
      );
      const winner = [...electable].sort((a, b) => b.data.length - a.data.length)[0];
      if (winner) {
        for (const m of current) if (m.config) m.config.term += 1;
        becomePrimary(cluster, winner.host);
        primary = winner.host;
      }
    }
    const leader = primary ? member(cluster, primary) : undefined;
    if (leader) for (const m of setMembers(cluster, setId)) m.data = [...leader.data];
  }
}
