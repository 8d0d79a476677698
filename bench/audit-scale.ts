/**
 * The background audit at scale, against the real control plane (test/e2e/support: etcd,
 * kube-apiserver, kube-controller-manager): N namespaces of StatefulSets and Services, most of them
 * compliant, created through the API directly (never one kubectl per object); then one audit
 * process, as its own ServiceAccount with deploy/audit's RBAC, and what it costs:
 *
 *   node --import tsx bench/audit-scale.ts [--namespaces 500] [--per-namespace 10] [--concurrency 24]
 *
 * prints the time to the first full scan, the audit's RSS, the API requests kube-apiserver counted
 * (apiserver_request_total, by verb and resource, before and after), and the reports written.
 * Needs `npm run build` (dist/bundle/audit/main.mjs) and the e2e control plane's binaries
 * (test/e2e/control-plane/build.sh, or STS_GUARD_E2E_BIN).
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Service,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { inParallel } from '../src/audit/parallel.js';
import { crdDirectory, OPENREPORTS_CRDS } from '../test/e2e/support/audit.js';
import { kubeconfigYaml, startControlPlane } from '../test/e2e/support/control-plane.js';
import { repoRoot } from '../test/support/repo.js';

const { values: args } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '500' },
    'per-namespace': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '24' },
    keep: { type: 'boolean', default: false },
  },
});
const NAMESPACES = Number(args.namespaces);
const PER_NAMESPACE = Number(args['per-namespace']);
const CONCURRENCY = Number(args.concurrency);
const say = (m: string) =>
  process.stderr.write(`[audit-scale ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

async function binaries(): Promise<string> {
  if (process.env.STS_GUARD_E2E_BIN) return process.env.STS_GUARD_E2E_BIN;
  const child = spawn('bash', [join(repoRoot, 'test/e2e/control-plane/build.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`build.sh exited ${code}`);
  return out.trim().split('\n').at(-1) ?? '';
}

function run(
  command: string,
  argv: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} ${argv.join(' ')}: ${err}`)),
    );
    child.stdin.end(input ?? '');
  });
}

/**
 * Namespace i holds StatefulSets db-0 … db-(n-1), each a 3-member MongoDB with --replSet behind
 * its own headless Service. Two mistakes, one namespace in ten each: db-0 without --replSet
 * (i % 10 = 0), or db-0's Service with a cluster IP (i % 10 = 5: a headless-service fail on the
 * StatefulSet and a client-routing warning on the Service).
 */
function objectsOf(i: number): { statefulSets: V1StatefulSet[]; services: V1Service[] } {
  const statefulSets: V1StatefulSet[] = [];
  const services: V1Service[] = [];
  for (let k = 0; k < PER_NAMESPACE; k++) {
    const name = `db-${k}`;
    const labels = { 'app.kubernetes.io/name': name };
    const standalone = k === 0 && i % 10 === 0;
    const clusterIp = k === 0 && i % 10 === 5;
    services.push({
      metadata: { name: `${name}-svc` },
      spec: {
        ...(clusterIp ? {} : { clusterIP: 'None', publishNotReadyAddresses: true }),
        selector: labels,
        ports: [{ name: 'mongodb', port: 27017 }],
      },
    });
    statefulSets.push({
      metadata: { name, labels },
      spec: {
        replicas: 3,
        serviceName: `${name}-svc`,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'mongodb',
                image: 'mongo:7.0',
                ...(standalone ? {} : { args: ['--replSet', 'rs0', '--bind_ip_all'] }),
                ports: [{ name: 'mongodb', containerPort: 27017 }],
              },
            ],
          },
        },
      },
    });
  }
  return { statefulSets, services };
}

/** apiserver_request_total as `verb resource` → count (all codes, groups and scopes summed). */
function requestCounts(metrics: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const label = (key: string) => new RegExp(`${key}="([^"]*)"`).exec(line)?.[1] ?? '';
    const key = `${label('verb')} ${label('resource') || '(non-resource)'}${label('subresource') ? `/${label('subresource')}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

const delta = (after: Map<string, number>, before: Map<string, number>) =>
  new Map(
    [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]).filter(([, v]) => (v as number) > 0) as Array<
      [string, number]
    >,
  );

const rssOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
};

async function metric(port: number, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function main() {
  const binDir = await binaries();
  const kubectlBin = join(binDir, 'kubectl');
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-audit-scale-'));
  say(`state in ${dir}; control plane from ${binDir}`);
  const plane = await startControlPlane(binDir, join(dir, 'control-plane'));
  let auditPid: number | undefined;
  try {
    const kubectl = (argv: string[], input?: string) =>
      run(kubectlBin, argv, { KUBECONFIG: plane.adminKubeconfig }, input);
    await kubectl(['apply', '-f', await crdDirectory(OPENREPORTS_CRDS)]);
    await kubectl(['wait', '--for=condition=Established', 'crd/reports.openreports.io']);
    await kubectl(['create', 'namespace', 'sts-guard']);
    const rbac = await run(join(binDir, 'kustomize'), ['build', join(repoRoot, 'deploy/audit')]);
    const onlyRbac = rbac
      .split(/^---$/m)
      .filter((doc) => /^kind: (ServiceAccount|ClusterRole|ClusterRoleBinding|Role|RoleBinding)$/m.test(doc))
      .join('---\n');
    await kubectl(['apply', '-f', '-'], onlyRbac);

    const admin = new KubeConfig();
    admin.loadFromFile(plane.adminKubeconfig);
    const core = admin.makeApiClient(CoreV1Api);
    const apps = admin.makeApiClient(AppsV1Api);
    const names = Array.from({ length: NAMESPACES }, (_, i) => `scale-${String(i).padStart(3, '0')}`);
    let started = performance.now();
    await inParallel(names, CONCURRENCY, async (name) => {
      await core.createNamespace({ body: { metadata: { name } } });
    });
    const work = names.flatMap((namespace, i) => {
      const { statefulSets, services } = objectsOf(i);
      return [
        ...services.map(
          (body) => () => core.createNamespacedService({ namespace, body }).then(() => undefined),
        ),
        ...statefulSets.map(
          (body) => () => apps.createNamespacedStatefulSet({ namespace, body }).then(() => undefined),
        ),
      ];
    });
    await inParallel(work, CONCURRENCY, (create) => create());
    const createSeconds = (performance.now() - started) / 1000;
    say(`created ${NAMESPACES} namespaces and ${work.length} objects in ${createSeconds.toFixed(1)} s`);

    // The controller manager creates each StatefulSet's first Pod: wait until that settles, so
    // its requests do not run alongside the audit's.
    let pods = -1;
    for (;;) {
      await sleep(10_000);
      const now = (await kubectl(['get', 'pods', '-A', '--no-headers', '-o', 'name']))
        .split('\n')
        .filter(Boolean).length;
      say(`${now} pods`);
      if (now === pods) break;
      pods = now;
    }

    const token = (
      await kubectl(['create', 'token', 'sts-guard-audit', '-n', 'sts-guard', '--duration=2h'])
    ).trim();
    const kubeconfig = join(dir, 'audit.kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(plane.server, plane.caFile, { token }));

    const before = requestCounts(await plane.apiserverMetrics());
    const port = 18000 + Math.floor(Math.random() * 1000);
    const log = openSync(join(dir, 'audit.log'), 'a');
    started = performance.now();
    const child = spawn(process.execPath, [join(repoRoot, 'dist/bundle/audit/main.mjs')], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        AUDIT_PORT: String(port),
        HOST: '127.0.0.1',
        POD_NAME: 'scale',
      },
      stdio: ['ignore', log, log],
    });
    auditPid = child.pid;
    const pid = child.pid as number;
    let rssAtStart: ReturnType<typeof rssOf> | undefined;
    let syncedAt: number | undefined;
    let scannedAt: number | undefined;
    while (scannedAt === undefined) {
      await sleep(100);
      if (child.exitCode !== null)
        throw new Error(`the audit exited: ${readFileSync(join(dir, 'audit.log'), 'utf8')}`);
      const health = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      if (!health) continue;
      rssAtStart ??= rssOf(pid);
      if (health.status === 200) syncedAt ??= performance.now();
      if ((await metric(port, 'sts_guard_audit_last_full_scan_timestamp_seconds')) > 0)
        scannedAt = performance.now();
    }
    const rssAfterScan = rssOf(pid);
    const heapAfterScan = (await metric(port, 'nodejs_heap_size_used_bytes')) / 1024 / 1024;
    // The same scan's requests only: let in-flight watches settle, then read the counters.
    await sleep(2_000);
    const after = requestCounts(await plane.apiserverMetrics());
    const reports = (await kubectl(['get', 'reports.openreports.io', '-A', '--no-headers', '-o', 'name']))
      .split('\n')
      .filter(Boolean).length;
    const created = await metric(port, 'sts_guard_audit_reports_written_total', 'operation="create"');
    await sleep(30_000);
    const rssSteady = rssOf(pid);
    const heapSteady = (await metric(port, 'nodejs_heap_size_used_bytes')) / 1024 / 1024;

    const requests = delta(after, before);
    const fmt = (mb: number) => `${mb.toFixed(0)} MB`;
    console.log(
      `\n## audit-scale: ${NAMESPACES} namespaces × ${PER_NAMESPACE} StatefulSets and ${PER_NAMESPACE} Services`,
    );
    console.log(
      `objects created through the API (concurrency ${CONCURRENCY}): ${createSeconds.toFixed(1)} s; ${pods} pods made by the controller`,
    );
    console.log('| figure | value |\n| --- | --- |');
    console.log(
      `| start → caches synced (/readyz 200) | ${(((syncedAt ?? 0) - started) / 1000).toFixed(2)} s |`,
    );
    console.log(
      `| start → first full scan finished (reports written) | ${((scannedAt - started) / 1000).toFixed(2)} s |`,
    );
    console.log(`| RSS at its first HTTP answer (caches still filling) | ${fmt(rssAtStart?.rssMb ?? 0)} |`);
    console.log(
      `| RSS after the first full scan (peak so far) | ${fmt(rssAfterScan.rssMb)} (${fmt(rssAfterScan.peakMb)}) |`,
    );
    console.log(`| RSS 30 s later | ${fmt(rssSteady.rssMb)} |`);
    console.log(
      `| V8 heap in use after the scan / 30 s later | ${fmt(heapAfterScan)} / ${fmt(heapSteady)} |`,
    );
    console.log(`| reports created / stored | ${created} / ${reports} |`);
    console.log(
      '\napiserver_request_total, start to first full scan + 2 s (every verb and resource that moved):',
    );
    console.log('| verb resource | requests |\n| --- | --- |');
    for (const [key, count] of [...requests].sort((a, b) => b[1] - a[1]))
      console.log(`| ${key} | ${count} |`);
  } finally {
    if (auditPid) process.kill(auditPid, 'SIGTERM');
    await sleep(1_000);
    await plane.stop();
    if (!args.keep) await rm(dir, { recursive: true, force: true });
  }
}

await main();
