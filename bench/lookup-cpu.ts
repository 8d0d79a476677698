/**
 * CPU per live look-up on the client side: sts-guard's real directories (src/cluster/) and the
 * installed @kubernetes/client-node, against the local API server (test/support/apiserver.ts)
 * running in this, the parent process, while a forked child does the look-ups and counts only
 * its own CPU (process.cpuUsage: user + system). Written to compare client-node versions
 * (bench/README.md, "@kubernetes/client-node 2.x"): run it in each tree, same machine, same time.
 *
 *   node --import tsx bench/lookup-cpu.ts [--lookups 3000] [--rounds 5] [--cpu-prof <dir>]
 *
 * --cpu-prof writes the look-up process's V8 profile to <dir>; `node --import tsx bench/profile.ts
 * <dir>/<file>.cpuprofile` says where its CPU went.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createKubernetesPersistentVolumeClaimDirectory } from '../src/cluster/persistentvolumeclaims.js';
import { createKubernetesServiceDirectory } from '../src/cluster/services.js';
import { createKubernetesStatefulSetDirectory } from '../src/cluster/statefulsets.js';
import { LocalApiServer } from '../test/support/apiserver.js';
import { percentile } from './stats.js';
import { headlessService, NAMESPACE, storedStatefulSets } from './workloads.js';

const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

interface Job {
  apiServerUrl: string;
  lookups: number;
  rounds: number;
}

type Kind = 'Service GET' | 'StatefulSet GET' | 'PersistentVolumeClaim LIST';
type Result = Record<Kind, { cpuUs: number[]; wallP50Us: number }>;

async function measure(job: Job): Promise<Result> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'local', server: job.apiServerUrl, skipTLSVerify: true }],
    users: [{ name: 'sts-guard', token: 'bench-token' }],
    contexts: [{ name: 'local', cluster: 'local', user: 'sts-guard' }],
    currentContext: 'local',
  });
  const options = { timeoutMs: 5000, log: pino({ level: 'silent' }), kubeConfig };
  const services = createKubernetesServiceDirectory({ ...options, cache: false });
  const statefulSets = createKubernetesStatefulSetDirectory(options);
  const claims = createKubernetesPersistentVolumeClaimDirectory(options);
  const [mongodb] = storedStatefulSets();
  const kinds: Array<[Kind, () => Promise<{ outcome: string }>]> = [
    ['Service GET', () => services.lookup(NAMESPACE, headlessService().metadata?.name ?? '')],
    ['StatefulSet GET', () => statefulSets.get(NAMESPACE, mongodb?.metadata?.name ?? '')],
    ['PersistentVolumeClaim LIST', () => claims.list(NAMESPACE)],
  ];
  const result = {} as Result;
  for (const [kind, lookup] of kinds) {
    for (let i = 0; i < 300; i++) await lookup(); // warm the code and the kept-alive connection
    const cpuUs: number[] = [];
    const wall: number[] = [];
    for (let round = 0; round < job.rounds; round++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < job.lookups; i++) {
        const started = performance.now();
        const found = await lookup();
        wall.push((performance.now() - started) * 1000);
        if (found.outcome !== 'found') throw new Error(`${kind} ended ${found.outcome}, not found`);
      }
      const used = process.cpuUsage(cpu);
      cpuUs.push((used.user + used.system) / job.lookups);
    }
    wall.sort((a, b) => a - b);
    result[kind] = { cpuUs, wallP50Us: percentile(Float64Array.from(wall), 50) };
  }
  services.close();
  return result;
}

if (process.send) {
  const [job] = (await once(process, 'message')) as [Job];
  process.send(await measure(job), () => process.exit(0));
} else {
  const api = await new LocalApiServer().start();
  api.put(headlessService());
  for (const sts of storedStatefulSets()) api.putStatefulSet(sts);
  const profileAt = process.argv.indexOf('--cpu-prof');
  const profile = profileAt > 0 ? ['--cpu-prof', `--cpu-prof-dir=${process.argv[profileAt + 1]}`] : [];
  const child = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx', ...profile] });
  child.send({
    apiServerUrl: api.url,
    lookups: option('lookups', 3000),
    rounds: option('rounds', 5),
  } satisfies Job);
  const [result] = (await once(child, 'message')) as [Result];
  const connections = api.connections;
  const requests = api.requests.length;
  await api.close();
  const version = (
    JSON.parse(
      readFileSync(new URL('../node_modules/@kubernetes/client-node/package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    }
  ).version;
  console.log(
    `@kubernetes/client-node ${version}, node ${process.version}: ${requests} look-ups on ${connections} TCP connection(s); CPU µs per look-up (client side), per round`,
  );
  for (const [kind, { cpuUs, wallP50Us }] of Object.entries(result)) {
    const sorted = [...cpuUs].sort((a, b) => a - b);
    console.log(
      `  ${kind.padEnd(28)} median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} µs  (rounds: ${cpuUs.map((c) => c.toFixed(0)).join(', ')}); wall p50 ${wallP50Us.toFixed(0)} µs`,
    );
  }
}
