import type { V1Container, V1PodSpec, V1VolumeMount } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { flagValue } from '../image.js';
import type { ConfigMaps } from '../types.js';

/** The path of mongod's configuration file: `--config <file>`, `--config=<file>` or `-f <file>`. */
export function configFilePath(argv: readonly string[]): string | undefined {
  return flagValue(argv, '--config') ?? flagValue(argv, '-f');
}

/** Where a config file's text lives, or why sts-guard cannot read it. */
export type ConfigFileLocation =
  | { readable: true; configMap: string; key: string }
  | { readable: false; reason: string };

const trimSlash = (p: string) => p.replace(/\/+$/, '');

/** The mount that holds `path`: the deepest mountPath that is the file itself or one of its directories. */
function mountHolding(container: V1Container, path: string): V1VolumeMount | undefined {
  let best: V1VolumeMount | undefined;
  for (const mount of container.volumeMounts ?? []) {
    const at = trimSlash(mount.mountPath ?? '');
    const holds = path === at || path.startsWith(`${at}/`);
    if (holds && (!best || at.length > trimSlash(best.mountPath).length)) best = mount;
  }
  return best;
}

/**
 * The ConfigMap key a config file path reads, following the container's volume mounts the way
 * the kubelet lays files out: a `subPath` mount is one key (or item path); a directory mount holds
 * every key, or the `items` it lists under their `path`.
 */
export function locateConfigFile(pod: V1PodSpec, container: V1Container, path: string): ConfigFileLocation {
  const mount = mountHolding(container, path);
  if (!mount) {
    return {
      readable: false,
      reason: `its config file ${path} is on no mounted volume (it comes from the image)`,
    };
  }
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
  const relative = mount.subPath
    ? path === trimSlash(mount.mountPath)
      ? mount.subPath
      : `${mount.subPath}/${path.slice(trimSlash(mount.mountPath).length + 1)}`
    : path.slice(trimSlash(mount.mountPath).length + 1);
  if (volume?.configMap?.name) {
    const items = volume.configMap.items;
    const key = items ? items.find((item) => item.path === relative)?.key : relative;
    if (!key || key.includes('/')) {
      return {
        readable: false,
        reason: `its config file ${path} is not a key of ConfigMap "${volume.configMap.name}" as volume "${volume.name}" mounts it`,
      };
    }
    return { readable: true, configMap: volume.configMap.name, key };
  }
  if (volume?.secret) {
    // Reading Secrets would give the webhook every credential in the cluster; it only reads ConfigMaps.
    return {
      readable: false,
      reason: `its config file ${path} is in Secret "${volume.secret.secretName}", which sts-guard does not read`,
    };
  }
  const kind = volume ? (Object.keys(volume).find((k) => k !== 'name') ?? 'volume') : 'a volumeClaimTemplate';
  return {
    readable: false,
    reason: `its config file ${path} is on volume "${mount.name}" (${kind}), written at run time`,
  };
}

/** The settings of a mongod YAML configuration file that sts-guard acts on. */
export interface MongodConfig {
  replSetName: string | undefined;
  port: number | undefined;
  dbPath: string | undefined;
  /** The whole `replication` section, kept so a fix shows it complete. */
  replication: Record<string, unknown>;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads mongod's YAML configuration (https://www.mongodb.com/docs/manual/reference/configuration-options/). */
export function readMongodConfig(
  text: string,
): { ok: true; config: MongodConfig } | { ok: false; reason: string } {
  let document: unknown;
  try {
    document = parse(text, { maxAliasCount: 50 });
  } catch (error) {
    return { ok: false, reason: `it is not valid YAML: ${(error as Error).message.split('\n')[0]}` };
  }
  if (document === null || document === undefined) document = {};
  if (!isRecord(document)) return { ok: false, reason: 'it is not a YAML mapping' };
  const section = (name: string) => (isRecord(document[name]) ? document[name] : {});
  const replication = section('replication');
  const name = replication.replSetName;
  const port = section('net').port;
  const dbPath = section('storage').dbPath;
  return {
    ok: true,
    config: {
      replSetName: typeof name === 'string' && name !== '' ? name : undefined,
      port: typeof port === 'number' && Number.isInteger(port) && port > 0 ? port : undefined,
      dbPath: typeof dbPath === 'string' && dbPath !== '' ? dbPath : undefined,
      replication,
    },
  };
}

/** The `replication:` block to put in the file, keeping what the file's block already holds. */
export function replicationBlock(config: MongodConfig, suggestedName: string): string {
  return stringify({ replication: { ...config.replication, replSetName: suggestedName } }).trimEnd();
}

/** The text of a located config file from the ConfigMaps the edge read, or why it is unknown. */
export function configFileText(
  location: { configMap: string; key: string },
  configMaps: ConfigMaps,
): { ok: true; text: string } | { ok: false; reason: string; lookupFailed: boolean } {
  const lookup = configMaps.get(location.configMap);
  const where = `ConfigMap "${location.configMap}"`;
  if (!lookup) return { ok: false, reason: `${where} was not read`, lookupFailed: true };
  switch (lookup.outcome) {
    case 'unavailable':
      return { ok: false, reason: `could not read ${where}: ${lookup.reason}`, lookupFailed: true };
    case 'not-found':
      return {
        ok: false,
        reason: `${where}, which holds its config file, does not exist`,
        lookupFailed: false,
      };
    case 'found': {
      const text = lookup.configMap.data?.[location.key];
      if (text === undefined) {
        return { ok: false, reason: `${where} has no key "${location.key}"`, lookupFailed: false };
      }
      return { ok: true, text };
    }
  }
}
