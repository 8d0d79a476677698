import type { V1Container, V1LifecycleHandler } from '@kubernetes/client-node';
import { flagValue, imageRepositorySegments } from '../image.js';
import type { DatabaseEngine, InitiationWindow, MemberAddressing } from '../types.js';
import { BOOTSTRAP_MARKER, bootstrapHookInfo, bootstrapResetToken, bootstrapScript } from './bootstrap.js';

const DEFAULT_PORT = 27017;

/** Last path segments that name a MongoDB server image, whatever the registry or mirror path. */
const SERVER_IMAGES = new Set([
  'mongo',
  'mongodb',
  'mongodb-community-server',
  'mongodb-enterprise-server',
  'percona-server-mongodb',
]);

/** The flags mongod was started with: `args`, plus `command` when the command itself is mongod. */
function mongodArgv(container: V1Container): string[] {
  const command = container.command ?? [];
  const args = container.args ?? [];
  const runsMongodDirectly = command.length > 0 && /(^|\/)mongod$/.test(command[0] ?? '');
  return runsMongodDirectly ? [...command.slice(1), ...args] : args;
}

export const mongodb: DatabaseEngine = {
  id: 'mongodb',
  displayName: 'MongoDB',

  matchesImage(image) {
    const segments = imageRepositorySegments(image);
    return SERVER_IMAGES.has(segments.at(-1) ?? '');
  },

  replicaSetName(container) {
    const name = flagValue(mongodArgv(container), '--replSet');
    return name && name.length > 0 ? name : undefined;
  },

  dataPath(container) {
    const configured = flagValue(mongodArgv(container), '--dbpath');
    if (configured) return configured;
    // Bitnami's image keeps data under /bitnami/mongodb; every other image uses mongod's default.
    return imageRepositorySegments(container.image ?? '').includes('bitnami')
      ? '/bitnami/mongodb'
      : '/data/db';
  },

  port(container) {
    const port = Number(flagValue(mongodArgv(container), '--port'));
    return Number.isInteger(port) && port > 0 ? port : DEFAULT_PORT;
  },

  replicaSetFix(container, suggestedName) {
    const args = [...(container.args ?? []), '--replSet', suggestedName];
    if (!args.some((a) => a === '--bind_ip_all' || a.startsWith('--bind_ip'))) args.push('--bind_ip_all');
    return `set the args of container "${container.name}" to: args: ${JSON.stringify(args)}`;
  },

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
