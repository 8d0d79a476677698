import { mongodb } from './mongodb/index.js';
import type { DatabaseEngine } from './types.js';

export type {
  ConfigMapLookup,
  ConfigMaps,
  ConfigurationForm,
  DatabaseEngine,
  MemberAddressing,
  ReplicaSetWiring,
  ServerInput,
  ServerSettings,
} from './types.js';

/** Every engine sts-guard knows, in the order they are tried. */
export const engines: readonly DatabaseEngine[] = [mongodb];
