import type { V1Container, V1LifecycleHandler, V1PodSpec } from '@kubernetes/client-node';
import { imageRepositorySegments } from '../image.js';
import type {
  DatabaseEngine,
  EngineWording,
  InitiationWindow,
  MemberAddressing,
  ReplicaSetWiring,
  ServerInput,
  ServerSettings,
} from '../types.js';
import { BOOTSTRAP_MARKER, bootstrapHookInfo, bootstrapResetToken, bootstrapScript } from './bootstrap.js';
import {
  flagsFix,
  isRuntimeValue,
  literalFlag,
  type MongodLaunch,
  mongodLaunch,
  scriptFix,
  writtenFlag,
} from './command.js';
import {
  configFilePath,
  configFileText,
  locateConfigFile,
  type MongodConfig,
  readMongodConfig,
  replicationBlock,
} from './config-file.js';
import {
  BITNAMI_DATA_PATH,
  bitnamiReplicaSet,
  bitnamiReplicaSetFix,
  DEFAULT_DATA_PATH,
  isBitnamiImage,
  SERVER_IMAGES,
} from './images.js';
import { mongodbOperatorOf } from './operators.js';

const DEFAULT_PORT = 27017;

const NO_ASSIGNMENTS: ReadonlyMap<string, string> = new Map();

/** mongod's flags, whatever the form they were written in (empty when a script could not be read). */
const argvOf = (launch: MongodLaunch) =>
  launch.form === 'flags' || launch.form === 'shell' ? launch.argv : [];

/** A `--replSet` value as mongod reads it: a legacy seed list `rs0/host:port,…` names the set before `/`. */
const setName = (value: string) => value.split('/')[0] ?? value;

function validPort(value: string | undefined): number | undefined {
  const port = Number(value);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

type ConfigRead =
  | { state: 'none' }
  | { state: 'read'; config: MongodConfig; configMap: string; key: string; path: string }
  | { state: 'unknown'; reason: string; lookupFailed: boolean };

function readConfig(input: ServerInput, argv: readonly string[]): ConfigRead {
  const path = configFilePath(argv);
  if (!path) return { state: 'none' };
  if (isRuntimeValue(path)) {
    return {
      state: 'unknown',
      reason: 'its config file path is only known at run time',
      lookupFailed: false,
    };
  }
  const location = locateConfigFile(input.pod, input.container, path);
  if (!location.readable) return { state: 'unknown', reason: location.reason, lookupFailed: false };
  const text = configFileText(location, input.configMaps);
  if (!text.ok) return { state: 'unknown', reason: text.reason, lookupFailed: text.lookupFailed };
  const read = readMongodConfig(text.text);
  if (!read.ok) {
    return {
      state: 'unknown',
      reason: `its config file ${path} (ConfigMap "${location.configMap}" key "${location.key}") cannot be read: ${read.reason}`,
      lookupFailed: false,
    };
  }
  return { state: 'read', config: read.config, configMap: location.configMap, key: location.key, path };
}

function replicaSetWiring(input: ServerInput, launch: MongodLaunch, config: ConfigRead): ReplicaSetWiring {
  const { container } = input;
  const unknown = (reason: string, lookupFailed = false): ReplicaSetWiring => ({
    state: 'unknown',
    reason,
    lookupFailed,
  });
  if (launch.form === 'unreadable') return unknown(launch.reason);
  const argv = argvOf(launch);
  const form = launch.form === 'shell' ? 'shell' : 'flags';

  // Command-line flags override the config file, as in mongod.
  const flag = writtenFlag(argv, '--replSet');
  if (flag) {
    const atRunTime = literalFlag(argv, '--replSet') === undefined;
    return {
      state: 'member',
      name: setName(flag),
      form,
      bootstrapsItself: false,
      ...(atRunTime ? { nameAtRunTime: true } : {}),
    };
  }
  if (config.state === 'unknown') return unknown(config.reason, config.lookupFailed);
  if (config.state === 'read' && config.config.replSetName) {
    return { state: 'member', name: config.config.replSetName, form: 'config-file', bootstrapsItself: false };
  }

  const assignments =
    launch.form === 'shell' || launch.form === 'shell-other' ? launch.assignments : NO_ASSIGNMENTS;
  if (isBitnamiImage(container.image)) {
    const name = bitnamiReplicaSet(container, assignments);
    if (name) return { state: 'member', name, form: 'environment', bootstrapsItself: true };
  }
  if (launch.form === 'shell' && launch.unresolved) {
    return unknown(
      `mongod's arguments include ${launch.unresolved}, which the shell expands only at run time`,
    );
  }
  if (launch.form === 'shell-other' && !isBitnamiImage(container.image)) {
    return unknown(`its shell script does not start mongod itself (it runs ${launch.runs})`);
  }

  if (config.state === 'read') {
    const { configMap, key, path } = config;
    return {
      state: 'standalone',
      form: 'config-file',
      fix: (name) =>
        `add this to mongod's config file ${path} (key "${key}" of ConfigMap "${configMap}"):\n${replicationBlock(config.config, name)}`,
    };
  }
  if (isBitnamiImage(container.image) && launch.form !== 'shell') {
    return { state: 'standalone', form: 'environment', fix: (name) => bitnamiReplicaSetFix(input, name) };
  }
  if (launch.form === 'shell') {
    return { state: 'standalone', form: 'shell', fix: (name) => scriptFix(container, launch, name) };
  }
  return { state: 'standalone', form: 'flags', fix: (name) => flagsFix(container, argv, name) };
}

function inspect(input: ServerInput): ServerSettings {
  const launch = mongodLaunch(input.container);
  const argv = argvOf(launch);
  const config = readConfig(input, argv);
  const read = config.state === 'read' ? config.config : undefined;
  const bitnami = isBitnamiImage(input.container.image);
  const dbpath = literalFlag(argv, '--dbpath') ?? read?.dbPath;
  return {
    replicaSet: replicaSetWiring(input, launch, config),
    port: validPort(literalFlag(argv, '--port')) ?? read?.port ?? DEFAULT_PORT,
    // An unreadable config file may move the data directory: better no storage than storage in the wrong place.
    dataPath:
      dbpath ?? (config.state === 'unknown' ? undefined : bitnami ? BITNAMI_DATA_PATH : DEFAULT_DATA_PATH),
  };
}

/** mongod's options and URIs, as the policy's messages name them. */
const wording: EngineWording = {
  suggestedReplicaSetName: 'rs0',
  standalone: (form) =>
    ({
      flags: 'without --replSet',
      shell: 'from a shell script without --replSet',
      'config-file': 'from a config file without replication.replSetName',
      environment: 'without MONGODB_REPLICA_SET_MODE',
    })[form],
  unknownWiring: (reason) => `could not tell whether mongod runs with --replSet: ${reason}.`,
  unknownWiringFix:
    "start mongod with a literal --replSet <name> in the container's command or args, or set replication.replSetName in a config file kept in a ConfigMap (sts-guard reads ConfigMaps, never Secrets); if this StatefulSet is known to be right, ask the platform team for an exception.",
  clientRouting: ({ replicaSetName, members, srvDomain }) => ({
    risk: 'lands on any member, SECONDARY included, where writes fail and reads can be stale',
    connect: `connect with the seed list mongodb://${members.join(',')}/?replicaSet=${replicaSetName}, or with mongodb+srv://${srvDomain}/?replicaSet=${replicaSetName}&tls=false (SRV records need the headless Service's port named "mongodb")`,
    seedClients: `replicaSet=${replicaSetName} in their URI`,
  }),
};

export const mongodb: DatabaseEngine = {
  id: 'mongodb',
  displayName: 'MongoDB',
  wording,

  matchesImage(image) {
    const segments = imageRepositorySegments(image);
    return SERVER_IMAGES.has(segments.at(-1) ?? '');
  },

  configMapsToRead(pod: V1PodSpec, container: V1Container) {
    const launch = mongodLaunch(container);
    const argv = argvOf(launch);
    if (literalFlag(argv, '--replSet') && literalFlag(argv, '--port') && literalFlag(argv, '--dbpath'))
      return [];
    const path = configFilePath(argv);
    if (!path || isRuntimeValue(path)) return [];
    const location = locateConfigFile(pod, container, path);
    return location.readable ? [location.configMap] : [];
  },

  inspect,

  operatorOf: mongodbOperatorOf,

  bootstrapHook(addressing: MemberAddressing, window?: InitiationWindow): V1LifecycleHandler {
    return { exec: { command: ['/bin/sh', '-c', bootstrapScript(addressing, window)] } };
  },

  isBootstrapHook(handler) {
    return handler.exec?.command?.some((part) => part.startsWith(BOOTSTRAP_MARKER)) ?? false;
  },

  bootstrapHookInfo(handler) {
    return bootstrapHookInfo(handler.exec?.command?.find((part) => part.startsWith(BOOTSTRAP_MARKER)));
  },

  bootstrapResetToken,
};
