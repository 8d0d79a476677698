import { mongodb } from './mongodb/index.js';
import type { DatabaseEngine } from './types.js';

export type { DatabaseEngine, MemberAddressing } from './types.js';

/** Every engine sts-guard knows, in the order they are tried. */
export const engines: readonly DatabaseEngine[] = [mongodb];
