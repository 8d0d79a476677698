/**
 * What a bench run measures, for how long, against which targets, and with which server settings:
 * read once from the command line (`--smoke`, `--cpu-prof`, `--sts-guard`, `--compare`,
 * `--compare-node`, `--connections`).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ServerOptions, useCompareEntry, useCompareNode, useStsGuardEntry } from './servers.js';

export const smoke = process.argv.includes('--smoke');
export const profile = process.argv.includes('--cpu-prof');
const stsGuardFlag = process.argv.indexOf('--sts-guard');
if (stsGuardFlag > 0) useStsGuardEntry(process.argv[stsGuardFlag + 1] ?? '');
const compareFlag = process.argv.indexOf('--compare');
if (compareFlag > 0) useCompareEntry(process.argv[compareFlag + 1] ?? '');
const compareNodeFlag = process.argv.indexOf('--compare-node');
if (compareNodeFlag > 0) useCompareNode(process.argv[compareNodeFlag + 1] ?? '');
/** `--connections N`: keep-alive connections of every load run (default 10; issue 21's figure used 16). */
const connectionsFlag = process.argv.indexOf('--connections');
const connections = connectionsFlag > 0 ? Number(process.argv[connectionsFlag + 1]) : 10;
if (!Number.isInteger(connections) || connections < 1) throw new Error('--connections needs a whole number');

/** How long and how much each part runs; the smoke plan only proves the scripts work. */
export const plan = smoke
  ? {
      connections,
      warmupSec: 0.3,
      saturateSec: 0.3,
      ratePerSec: 1000,
      pacedSec: 0.3,
      rssReviews: 1000,
      rssSamples: 2,
      coldStarts: 1,
      cachedLookups: 1000,
      liveLookups: 30,
      cpuRounds: 1,
      cpuReviews: 200,
    }
  : {
      connections,
      warmupSec: 3,
      saturateSec: 5,
      ratePerSec: 1000,
      pacedSec: 10,
      rssReviews: 100_000,
      rssSamples: 10,
      coldStarts: 10,
      cachedLookups: 100_000,
      liveLookups: 2000,
      cpuRounds: 5,
      cpuReviews: 5000,
    };
export type Plan = typeof plan;

export const TARGETS = {
  throughputRatio: 0.8,
  p99Ms: 2,
  coldStartRatio: 1.5,
  rssRatio: 1.5,
  rssGrowth: 0.1,
  /** MongoDB CREATE /validate: sts-guard's CPU per review ÷ Fastify alone's. */
  cpuVsFastify: 1.3,
};

/**
 * The Deployment's settings: the Service cache on (the baseline ignores them). The smoke run
 * allows slow look-ups, as a busy CI machine can take over 1.5 s to load the Kubernetes client.
 */
export const SERVER_OPTIONS: ServerOptions = {
  serviceCache: 'on',
  ...(smoke ? { lookupTimeoutMs: 10_000 } : {}),
};
export const COLD_START_OPTIONS: ServerOptions = { ...SERVER_OPTIONS, serviceCache: 'off' };
export const PROFILE_DIR = join(tmpdir(), 'sts-guard-bench-profiles');

const runStarted = performance.now();
/** A progress line on stderr with the seconds since the run started. */
export const log = (line: string) =>
  process.stderr.write(
    `bench: ${((performance.now() - runStarted) / 1000).toFixed(1).padStart(5)} s  ${line}\n`,
  );
