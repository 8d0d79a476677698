/**
 * Kyverno's admission controller (the `kyverno` binary, ./cmd/kyverno) run outside the cluster
 * against the e2e control plane, as Kyverno's DEVELOPMENT.md ("Debugging local code") runs it:
 * `--serverIP` makes it register its webhooks by URL. Everything else comes from the module:
 * its CRDs (config/crds/, created, not client-side applied: they are too large for the
 * last-applied annotation), its namespace and ConfigMaps, its flags and environment from the
 * admission controller's Deployment in config/install-latest-testing.yaml (the chart's defaults).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { buildScriptOutput } from '../../test/e2e/support/setup.js';
import { freePort } from '../../test/support/processes.js';

const run = promisify(execFile);

export const KYVERNO_NAMESPACE = 'kyverno';
/** The admission controller's two resource webhooks for a policy with failurePolicy Fail. */
export const KYVERNO_WEBHOOKS = { mutate: 'mutate.kyverno.svc-fail', validate: 'validate.kyverno.svc-fail' };

/** Builds Kyverno (bench/peers/build-kyverno.sh, cached by version); returns its directory. */
export function kyvernoBuild(): Promise<string> {
  return buildScriptOutput('bench/peers/build-kyverno.sh');
}

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    template: {
      spec: {
        containers: Array<{
          name: string;
          args?: string[];
          env?: Array<{ name: string; value?: string }>;
          resources?: { limits?: { memory?: string } };
        }>;
      };
    };
  };
}

export interface KyvernoProcess {
  child: ChildProcess;
  pid: number;
  /** https://127.0.0.1:<port>, where the API server calls it. */
  url: string;
  /** Its Prometheus endpoint (plain HTTP on loopback). */
  metricsUrl: string;
  log: string;
  stop(): Promise<void>;
}

export interface KyvernoOptions {
  /** The directory bench/peers/build-kyverno.sh printed. */
  home: string;
  kubeconfig: string;
  /** Runs kubectl as the cluster admin; resolves with stdout, rejects on failure. */
  kubectl: (args: string[], input?: string) => Promise<string>;
  dir: string;
  /** Kyverno's resource webhooks are called only for namespaces with this label (its `webhooks` setting). */
  namespaceLabel: Record<string, string>;
}

/** 384Mi (the chart's memory limit) in bytes, ×0.9: what automemlimit sets GOMEMLIMIT to in the pod. */
function goMemLimit(limit: string | undefined): string | undefined {
  const match = /^(\d+)Mi$/.exec(limit ?? '');
  return match ? String(Math.floor(Number(match[1]) * 1024 * 1024 * 0.9)) : undefined;
}

export async function startKyverno(o: KyvernoOptions): Promise<KyvernoProcess> {
  const install = parseAllDocuments(await readFile(join(o.home, 'install-latest-testing.yaml'), 'utf8')).map(
    (d) => d.toJS() as Manifest,
  );
  const deployment = install.find(
    (m) => m.kind === 'Deployment' && m.metadata.name === 'kyverno-admission-controller',
  );
  const container = deployment?.spec?.template.spec.containers.find((c) => c.name === 'kyverno');
  if (!container?.args) throw new Error('no kyverno-admission-controller Deployment in the install manifest');

  await o.kubectl(['create', '-f', join(o.home, 'crds'), '-R']);
  await o.kubectl([
    'wait',
    '--for=condition=Established',
    '-f',
    join(o.home, 'crds'),
    '-R',
    '--timeout=120s',
  ]);
  await o.kubectl(['create', 'namespace', KYVERNO_NAMESPACE]);
  // The chart's two ConfigMaps, with one change: the resource webhooks' namespaceSelector also
  // requires `namespaceLabel`, so Kyverno is called for its own namespaces only (as sts-guard's
  // registration excludes the others), not for every StatefulSet of the cluster.
  for (const map of install.filter((m) => m.kind === 'ConfigMap')) {
    if (map.metadata.name === 'kyverno' && map.data?.webhooks) {
      const webhooks = JSON.parse(map.data.webhooks) as { namespaceSelector?: Record<string, unknown> };
      webhooks.namespaceSelector = { ...webhooks.namespaceSelector, matchLabels: o.namespaceLabel };
      map.data.webhooks = JSON.stringify(webhooks);
    }
    await o.kubectl(['create', '-f', '-'], stringify({ ...map, metadata: { ...map.metadata } }));
  }

  const port = await freePort();
  const [metricsPort, runtimeMetricsPort] = [await freePort(), await freePort()];
  // The Deployment's flags, with what a process outside the cluster must change: where it
  // listens, where its webhooks are registered (--serverIP), its kubeconfig, and the metrics
  // ports (loopback, free ones: the machine is shared).
  const overrides: Record<string, string> = {
    '--webhookServerPort': String(port),
    '--controllerRuntimeMetricsAddress': `127.0.0.1:${runtimeMetricsPort}`,
    '--metricsPort': String(metricsPort),
    // GOMEMLIMIT as the pod gets it (below), not from this machine's 24 GB.
    '--autoMemLimitEnabled': 'false',
  };
  const args = [
    ...container.args.filter((a) => !(a.split('=')[0]! in overrides)),
    ...Object.entries(overrides).map(([k, v]) => `${k}=${v}`),
    `--serverIP=127.0.0.1:${port}`,
    '--webhookServerHost=127.0.0.1',
    '--metricsHost=127.0.0.1',
    `--kubeconfig=${o.kubeconfig}`,
  ];
  // The Deployment's environment; fieldRef values filled in as the kubelet would.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    KYVERNO_NAMESPACE,
    KYVERNO_POD_NAME: 'kyverno-admission-controller-bench',
  };
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
  }
  env.TUF_ROOT = join(o.dir, 'sigstore');
  const memLimit = goMemLimit(container.resources?.limits?.memory);
  if (memLimit) env.GOMEMLIMIT = memLimit;
  await mkdir(env.TUF_ROOT, { recursive: true });

  const log = join(o.dir, 'kyverno.log');
  const out = createWriteStream(log);
  const child = spawn(join(o.home, 'kyverno'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  if (child.pid === undefined) throw new Error('could not start kyverno');
  const url = `https://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  // Ready once it serves its readiness endpoint over the certificate it issued itself.
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`kyverno exited with ${child.exitCode}; see ${log}`);
    const ready = await run('curl', [
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${url}/health/readiness`,
    ])
      .then((r) => r.stdout === '200')
      .catch(() => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`kyverno did not become ready within 180 s; see ${log}`);
    }
    await sleep(500);
  }
  return { child, pid: child.pid, url, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, log, stop };
}

/**
 * Creates the policy and waits until Kyverno reports it Ready and has registered its resource
 * webhooks for StatefulSets.
 */
export async function installPolicy(
  kubectl: KyvernoOptions['kubectl'],
  policy: { metadata: { name: string } },
): Promise<void> {
  await kubectl(['create', '-f', '-'], JSON.stringify(policy));
  await kubectl(['wait', '--for=condition=Ready', `clusterpolicy/${policy.metadata.name}`, '--timeout=120s']);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const registered = await Promise.all(
      [
        ['mutatingwebhookconfiguration', 'kyverno-resource-mutating-webhook-cfg'],
        ['validatingwebhookconfiguration', 'kyverno-resource-validating-webhook-cfg'],
      ].map(async ([kind, name]) => {
        const text = await kubectl(['get', kind!, name!, '-o', 'json']).catch(() => '');
        return text.includes('"statefulsets"');
      }),
    );
    if (registered.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error('Kyverno did not register webhooks for statefulsets in 120 s');
    await sleep(1000);
  }
}
