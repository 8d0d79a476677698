// STAND-IN for the mongosh and legacy mongo executables (see below).
/**
 * A stand-in for the `mongosh` and legacy `mongo` executables: parses the shell's argv
 * (`--quiet --port N --eval <js>`), then executes the JS in a `node:vm` context that offers the
 * part of the mongo shell API the bootstrap hook uses, answered by the simulated replica set in
 * the file named by FAKE_MONGO_CLUSTER. FAKE_POD_NAME says which pod's container it runs in.
 *
 * The flavour is the name it is invoked as. The two differ the way the real shells do:
 * mongosh throws a MongoServerError when a command answers `{ ok: 0 }`, the legacy shell returns
 * the document; both throw when a connection cannot be made.
 *
 * The harness bundles this file with esbuild into a CommonJS executable, so it starts fast.
 */
import { basename } from 'node:path';
import vm from 'node:vm';
import {
  type ClusterEvent,
  type ShellFlavour,
  type SimulatedCluster,
  type SimulatedMember,
  withCluster,
} from './cluster.js';
import { type CommandResult, connectionFailure, inDns, primaryFor, serverCommand } from './server.js';

const invokedAs = basename(process.argv[1] ?? '');
const flavour: ShellFlavour = invokedAs === 'mongo' ? 'mongo' : 'mongosh';
const clusterFile = requiredEnv('FAKE_MONGO_CLUSTER');
const pod = requiredEnv('FAKE_POD_NAME');
/** `sleep(2000)` in the script waits 2000 × scale ms. */
const sleepScale = Number(process.env.FAKE_MONGO_SLEEP_SCALE ?? '0.005');

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`fake ${basename(process.argv[1] ?? 'mongo')}: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

interface ShellArguments {
  port: number;
  host: string;
  evaluate: string | undefined;
}

/** The options the real shells accept that the hook could use; anything else is refused like they do. */
function parseArguments(argv: string[]): ShellArguments {
  const parsed: ShellArguments = { port: 27017, host: '127.0.0.1', evaluate: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined)
        fail(`Error parsing command line: the required argument for option '${arg}' is missing`);
      return next;
    };
    if (arg === '--quiet') continue;
    if (arg === '--port') {
      const port = Number(value());
      if (!Number.isInteger(port) || port <= 0) fail(`Error parsing command line: invalid port`);
      parsed.port = port;
    } else if (arg === '--host') parsed.host = value();
    else if (arg === '--eval') parsed.evaluate = value();
    else fail(`Error parsing command line: unrecognised option '${arg}'`);
  }
  return parsed;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/** A network-level failure, thrown by both shells (mongosh: MongoNetworkError/MongoServerSelectionError). */
function networkError(message: string): Error {
  const error = new Error(message);
  error.name = flavour === 'mongosh' ? 'MongoNetworkError' : 'Error';
  return error;
}

/** What mongosh throws for `{ ok: 0 }` answers. */
class MongoServerError extends Error {
  readonly code: number | undefined;
  readonly codeName: string | undefined;
  readonly errorResponse: CommandResult;
  constructor(result: CommandResult) {
    super(String(result.errmsg));
    this.name = 'MongoServerError';
    this.code = typeof result.code === 'number' ? result.code : undefined;
    this.codeName = typeof result.codeName === 'string' ? result.codeName : undefined;
    this.errorResponse = result;
  }
}

const context = vm.createContext({});
/** Copies a value into the script's realm, the way the shells hand BSON documents to scripts. */
const intoScript = vm.runInContext('(function (json) { return JSON.parse(json); })', context) as (
  json: string,
) => unknown;

/** Where a connection sends its commands: one member, or (mongosh without directConnection) the set's primary. */
interface Target {
  host: string;
  direct: boolean;
  /** The shell's own mongod, reached on 127.0.0.1: no DNS involved. */
  local?: boolean;
}

/** Appends an event, unless the cluster keeps only what the hooks print. */
function record(cluster: SimulatedCluster, event: ClusterEvent): void {
  if (cluster.printsOnly && event.kind !== 'print') return;
  cluster.events.push(event);
}

function localMember(port: number): SimulatedMember {
  return withCluster(clusterFile, (cluster) => {
    const self = cluster.members.find((m) => m.pod === pod);
    if (!self) throw new Error(`the simulated cluster has no pod ${pod}`);
    const starting = self.refusesConnections > 0;
    if (starting) self.refusesConnections -= 1;
    const ok = self.up && !starting && port === cluster.port;
    record(cluster, { kind: 'connect', from: pod, shell: flavour, to: `127.0.0.1:${port}`, ok });
    if (!ok) {
      throw networkError(
        flavour === 'mongosh'
          ? `connect ECONNREFUSED 127.0.0.1:${port}`
          : `couldn't connect to server 127.0.0.1:${port}, connection attempt failed: SocketException: Error connecting to 127.0.0.1:${port} :: caused by :: Connection refused`,
      );
    }
    return self;
  });
}

/** `new Mongo(x)`: x is `host:port` or a mongodb:// URI; the connection is made at once (both shells). */
function dial(spec: string): Target {
  let host = spec;
  let direct = true;
  if (spec.startsWith('mongodb://')) {
    const url = new URL(spec);
    host = url.host;
    // mongosh's driver discovers the topology from a single seed unless directConnection=true.
    direct = flavour === 'mongo' || url.searchParams.get('directConnection') === 'true';
  }
  if (!/^[^:/]+:\d+$/.test(host)) throw networkError(`invalid host string: ${spec}`);
  withCluster(clusterFile, (cluster) => {
    const failure = connectionFailure(cluster, host);
    // Resolving a name is a DNS query: time passes for records that lag.
    if (!/^[\d.]+:\d+$/.test(host)) for (const m of cluster.members) if (m.dnsLag > 0) m.dnsLag -= 1;
    record(cluster, { kind: 'connect', from: pod, shell: flavour, to: host, ok: failure === undefined });
    if (failure) {
      throw networkError(
        flavour === 'mongosh'
          ? `Server selection timed out after 3000 ms: ${failure}`
          : `couldn't connect to server ${host}, connection attempt failed: ${failure}`,
      );
    }
  });
  return { host, direct };
}

function runCommand(target: Target, command: unknown): unknown {
  const body = JSON.parse(JSON.stringify(command)) as Record<string, unknown>;
  const name = Object.keys(body)[0] ?? '';
  const result = withCluster(clusterFile, (cluster) => {
    let host = target.host;
    if (!target.direct) {
      // Topology discovery: the command goes to the primary the seed names; none means selection fails.
      const seed = cluster.members.find((m) => m.host === target.host);
      const primary = seed?.config ? primaryFor(cluster, seed.config) : undefined;
      if (!primary) throw networkError('Server selection timed out after 3000 ms');
      host = primary;
    }
    const self = target.local ? cluster.members.find((m) => m.host === host) : undefined;
    const failure = target.local
      ? self?.up
        ? undefined
        : 'Connection refused'
      : connectionFailure(cluster, host);
    if (failure) throw networkError(`connection to ${host} closed: ${failure}`);
    const answer = serverCommand(cluster, host, body);
    record(cluster, {
      kind: 'command',
      from: pod,
      shell: flavour,
      to: host,
      name,
      body: body[name],
      ok: answer.ok === 1,
      ...(typeof answer.code === 'number' ? { code: answer.code } : {}),
    });
    return answer;
  });
  if (result.ok !== 1 && flavour === 'mongosh') throw new MongoServerError(result);
  return intoScript(JSON.stringify(result));
}

function database(target: Target, name: string) {
  const db = {
    getName: () => name,
    getMongo: () => connection(target),
    getSiblingDB: (other: string) => database(target, other),
    runCommand: (command: unknown) => runCommand(target, command),
    adminCommand: (command: unknown) => runCommand(target, command),
  };
  return db;
}

function connection(target: Target) {
  return {
    getDB: (name: string) => database(target, name),
    host: target.host,
    toString: () => `connection to ${target.host}`,
  };
}

function print(...values: unknown[]): void {
  const text = values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(' ');
  process.stdout.write(`${text}\n`);
  withCluster(clusterFile, (cluster) => {
    cluster.events.push({ kind: 'print', from: pod, shell: flavour, text });
  });
}

const pause = new Int32Array(new SharedArrayBuffer(4));

function sleep(ms: number): void {
  withCluster(clusterFile, (cluster) => {
    record(cluster, { kind: 'sleep', from: pod, shell: flavour, ms });
  });
  Atomics.wait(pause, 0, 0, Math.max(0, ms * sleepScale));
}

function main(): void {
  const args = parseArguments(process.argv.slice(2));
  if (args.host !== '127.0.0.1' && args.host !== 'localhost')
    fail(`this fake only connects to the local mongod`);
  let local: SimulatedMember;
  try {
    local = localMember(args.port);
  } catch (error) {
    // Both shells print the connection error and exit 1 before running any script.
    fail(`${(error as Error).name}: ${(error as Error).message}`, 1);
  }
  const localTarget: Target = { host: local.host, direct: true, local: true };
  const offsetMs = (withCluster(clusterFile, (cluster) => cluster.clockOffsetSeconds) ?? 0) * 1000;
  if (offsetMs !== 0) {
    // The simulation's clock: time has passed for the pods (e.g. past an initiation window).
    vm.runInContext(
      `Date = (function (RealDate) {
        function SimulatedDate() {
          if (!(this instanceof SimulatedDate)) return RealDate();
          var args = Array.prototype.slice.call(arguments);
          return args.length === 0 ? new RealDate(RealDate.now() + ${offsetMs}) : new (Function.prototype.bind.apply(RealDate, [null].concat(args)))();
        }
        SimulatedDate.prototype = RealDate.prototype;
        SimulatedDate.now = function () { return RealDate.now() + ${offsetMs}; };
        return SimulatedDate;
      })(Date);`,
      context,
    );
  }
  Object.assign(context, {
    db: database(localTarget, 'test'),
    // A plain function: `new Mongo(x)` returns the object it returns, as the shells' constructors do.
    Mongo: function Mongo(spec: string) {
      return connection(dial(spec));
    },
    print,
    printjson: (value: unknown) => print(JSON.stringify(value, null, 2)),
    sleep,
    quit: (code?: number) => process.exit(typeof code === 'number' ? code : 0),
  });
  if (args.evaluate === undefined) return;
  try {
    const value = vm.runInContext(args.evaluate, context, { filename: '<eval>' });
    if (value !== undefined)
      process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
  } catch (error) {
    fail(`Uncaught ${String(error)}`, 1);
  }
}

/**
 * `getent ahosts <name>` as glibc prints it, answered from the simulated DNS: a pod's name gives
 * its IP, the headless Service's name every pod it publishes (publishNotReadyAddresses: all pods
 * that exist). Each look-up lets time pass for records that lag (`dnsLag`). Exit 2: not found.
 */
function getent(argv: string[]): void {
  const [database, name] = argv;
  if (database !== 'ahosts' || !name) fail(`fake getent: only "ahosts <name>" is simulated`, 1);
  const addresses = withCluster(clusterFile, (cluster) => {
    const found = cluster.members.filter((m) => {
      const host = m.host.slice(0, m.host.lastIndexOf(':'));
      return inDns(m) && (host === name || host.slice(host.indexOf('.') + 1) === name);
    });
    for (const m of cluster.members) if (m.dnsLag > 0) m.dnsLag -= 1;
    return found.map((m) => m.ip);
  });
  if (addresses.length === 0) process.exit(2);
  for (const ip of addresses) {
    for (const type of ['STREAM', 'DGRAM', 'RAW']) process.stdout.write(`${ip.padEnd(15)} ${type} ${name}\n`);
  }
}

if (invokedAs === 'getent') getent(process.argv.slice(2));
else main();
