/**
 * `npm run bench`: sts-guard against a bare node:https baseline, measured in the same run.
 * `npm run bench:smoke`: every part for a second or so; exits 0 when the scripts work.
 * `--cpu-prof`: the long-lived servers write V8 CPU profiles (path printed at the end).
 *
 * Processes: this orchestrator (and the local Kubernetes API server), one load generator
 * (load.ts) and one server process under test at a time doing work, so on 2 cores the server
 * and the load generator each have a core.
 *
 * The run is its parts: plan.ts (what runs, for how long, against which targets), the load
 * generator (load-generator.ts, load.ts), one module per measurement (measure/) and report.ts.
 */
import { mkdir } from 'node:fs/promises';
import { LoadGenerator } from './load-generator.js';
import { coldStarts } from './measure/cold-start.js';
import { cpuPerReview } from './measure/cpu.js';
import { latencyAtRate } from './measure/latency.js';
import { rss } from './measure/rss.js';
import { serviceLookups } from './measure/service-lookup.js';
import { startSession } from './measure/session.js';
import { saturation } from './measure/throughput.js';
import { log, PROFILE_DIR, profile } from './plan.js';
import { loadAverage, report } from './report.js';
import {
  type BenchEnvironment,
  CLIENT_CORE,
  ensureBuilt,
  pinProcess,
  prepareEnvironment,
} from './servers.js';
import { type CpuWorkload, cpuWorkloads, type Workload, workloads } from './workloads.js';

/** Saturation, latency and CPU per review: they share one set of long-lived, warmed-up servers. */
async function onLiveServers(
  env: BenchEnvironment,
  load: LoadGenerator,
  list: Workload[],
  cpu: CpuWorkload[],
) {
  const session = await startSession(env, load, list, cpu);
  try {
    const servicesBefore = session.liveLookups('services');
    const claimsBefore = session.liveLookups('persistentvolumeclaims');
    const { throughput, reference } = await saturation(session, load, list);
    const latency = await latencyAtRate(env, session, load, list);
    const liveGets = session.liveLookups('services') - servicesBefore;
    const claimLists = session.liveLookups('persistentvolumeclaims') - claimsBefore;
    const cpuRows = await cpuPerReview(load, cpu, session);
    const pids = { stsGuard: session.stsGuard.pid, baseline: session.baseline.pid };
    const compareDiffers = session.compareDiffers;
    return { throughput, reference, latency, liveGets, claimLists, cpuRows, pids, compareDiffers };
  } finally {
    await session.stop();
  }
}

async function main() {
  const loadBefore = loadAverage();
  await ensureBuilt(log);
  pinProcess(process.pid, CLIENT_CORE);
  const env = await prepareEnvironment();
  if (profile) await mkdir(PROFILE_DIR, { recursive: true });
  const load = new LoadGenerator();
  const list = workloads();
  const cpu = cpuWorkloads(list);
  try {
    const measured = await onLiveServers(env, load, list, cpu);
    const rssStsGuard = await rss('sts-guard', env, load, list);
    const rssBaseline = await rss('baseline', env, load, list);
    const cold = await coldStarts(env, list);
    const lookup = await serviceLookups(env);
    const loadAfter = loadAverage();
    log('done');
    process.stdout.write(
      report({
        list,
        cpu,
        ...measured,
        rssStsGuard,
        rssBaseline,
        cold,
        lookup,
        loadBefore,
        loadAfter,
      }),
    );
  } finally {
    load.close();
    await env.close();
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
