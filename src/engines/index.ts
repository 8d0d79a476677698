import { mongodb } from './mongodb/index.js';
import type { DatabaseEngine } from './types.js';

export type {
  BootstrapHookInfo,
  ConfigMapLookup,
  ConfigMaps,
  ConfigurationForm,
  DatabaseEngine,
  EngineWording,
  InitiationWindow,
  MemberAddressing,
  ReplicaSetWiring,
  ServerInput,
  ServerSettings,
} from './types.js';

/** Every engine sts-guard knows, in the order they are tried. */
export const engines: readonly DatabaseEngine[] = [mongodb];
