/**
 * The peers bench's cluster: the e2e control plane (test/e2e/support/control-plane.ts) with three
 * admission webhooks registered by URL, each called for its own namespaces only:
 *
 * - sts-guard: `node dist/bundle/server.mjs` (what `npm start` and the image run) with deploy/'s
 *   environment and RBAC, a ServiceAccount token, and deploy/webhooks through the url-registration
 *   component, as `npm run test:e2e` runs it;
 * - Kyverno: bench/peers/kyverno.ts, with the ClusterPolicy of bench/peers/policy.ts;
 * - the bare webhook: bench/baseline-server.mjs (parse, fixed allow) under sts-guard's
 *   registration re-pointed at it (same rules, matchConditions and timeouts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ControlPlane,
  kubeconfigYaml,
  startControlPlane,
} from '../../test/e2e/support/control-plane.js';
import {
  clusterKubectl,
  controlPlaneBinaries,
  kubectl as kubectlAs,
  registrationFor,
  renderWebhooks,
  serverCertificate,
} from '../../test/e2e/support/setup.js';
import { stsGuardGet } from '../../test/e2e/support/sts-guard.js';
import { freePort } from '../../test/support/processes.js';
import { repoRoot } from '../../test/support/repo.js';
import { installPolicy, KYVERNO_WEBHOOKS, kyvernoBuild, startKyverno } from './kyverno.js';
import { kyvernoPolicy } from './policy.js';

export type PeerName = 'sts-guard' | 'kyverno' | 'bare';
export const PEERS: readonly PeerName[] = ['sts-guard', 'kyverno', 'bare'];

export interface Peer {
  name: PeerName;
  /** The webhook server's own process (not a wrapper): its CPU and RSS are read from /proc. */
  pid: number;
  /** kube-apiserver's names for its two StatefulSet webhooks. */
  webhooks: { mutate: string; validate: string };
  /** Labels a namespace needs to be reviewed by this peer alone. */
  namespaceLabels: Record<string, string>;
  /** The server's own histogram of the time it takes per review, where it keeps one. */
  own?: { metric: string; scrape(): Promise<string> };
}

export interface ApiAnswer {
  status: number;
  body: string;
}

export interface PeersCluster {
  plane: ControlPlane;
  /** The control plane's binaries (kube-apiserver, etcd, kustomize …). */
  binDir: string;
  dir: string;
  peers: Record<PeerName, Peer>;
  kubectl(args: string[], input?: string): Promise<string>;
  /** One request to kube-apiserver as the admin, on a kept-alive connection of `agent`. */
  api(agent: Agent, method: string, path: string, body?: string): Promise<ApiAnswer>;
  /** An agent for `sockets` concurrent clients (client certificate of the admin). */
  agent(sockets: number): Agent;
  /** A namespace reviewed by `peer` alone, with its default ServiceAccount. */
  namespace(name: string, peer: PeerName): Promise<void>;
  stop(): Promise<void>;
}

/** The label that scopes Kyverno's resource webhooks to its namespaces (its `webhooks` setting). */
const KYVERNO_LABEL = { 'sts-guard.io/peer': 'kyverno' };
/** deploy/webhooks' namespaceSelector leaves out namespaces labelled so. */
const STS_GUARD_EXEMPT = { 'sts-guard.io/exempt': 'true' };

function say(message: string) {
  process.stderr.write(`[peers ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function waitFor(what: string, timeoutMs: number, ready: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await sleep(300);
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startPeersCluster(dir: string, o: { stsGuardEntry: string }): Promise<PeersCluster> {
  const binDir = await controlPlaneBinaries();
  const kyvernoHome = await kyvernoBuild();
  const kubectlPath = clusterKubectl(binDir);
  say(`control plane: ${binDir}; Kyverno: ${kyvernoHome}; kubectl: ${kubectlPath}`);
  process.env.PATH = `${binDir}:${process.env.PATH}`;
  await mkdir(join(dir, 'logs'), { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    say('starting etcd, kube-apiserver and kube-controller-manager');
    const plane = await startControlPlane(binDir, join(dir, 'control-plane'));
    stops.push(() => plane.stop());
    const admin = plane.adminKubeconfig;
    const kubectl = (args: string[], input?: string) => kubectlAs(kubectlPath, admin, args, input);
    const credentials = {
      ca: await readFile(plane.caFile, 'utf8'),
      cert: await readFile(join(plane.dir, 'admin.crt'), 'utf8'),
      key: await readFile(join(plane.dir, 'admin.key'), 'utf8'),
    };
    const agent = (sockets: number) => new Agent({ keepAlive: true, maxSockets: sockets, ...credentials });
    const api = (via: Agent, method: string, path: string, body?: string) =>
      new Promise<ApiAnswer>((resolve, reject) => {
        const req = request(
          `${plane.server}${path}`,
          { method, agent: via, headers: body ? { 'content-type': 'application/json' } : {} },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });

    // sts-guard, as test/e2e/run.ts starts it, but its node process directly (CPU and RSS are
    // read from its /proc entry) with deploy/base's environment.
    await kubectl(['apply', '-k', join(repoRoot, 'deploy/common')]);
    const certs = await serverCertificate(dir);
    const token = (
      await kubectl(['create', 'token', 'sts-guard', '-n', 'sts-guard', '--duration=6h'])
    ).trim();
    const saKubeconfig = join(dir, 'sts-guard.kubeconfig');
    await writeFile(saKubeconfig, kubeconfigYaml(plane.server, plane.caFile, { token }));
    const stsGuardPort = await freePort();
    const stsGuardUrl = `https://127.0.0.1:${stsGuardPort}`;
    const caFile = join(certs, 'ca.crt');
    const tls = { TLS_CERT_FILE: join(certs, 'tls.crt'), TLS_KEY_FILE: join(certs, 'tls.key') };
    const stsGuard = spawn(process.execPath, [o.stsGuardEntry], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...tls,
        KUBECONFIG: saKubeconfig,
        PORT: String(stsGuardPort),
        HOST: '127.0.0.1',
        LOOKUP_TIMEOUT_MS: '1500',
        SERVICE_CACHE: 'on',
        LOOKUP_FAILURE_MODE: 'deny',
        LOG_LEVEL: 'info',
        SHUTDOWN_DRAIN_MS: '0',
      },
      stdio: [
        'ignore',
        openSync(join(dir, 'logs/sts-guard.log'), 'a'),
        openSync(join(dir, 'logs/sts-guard.log'), 'a'),
      ],
    });
    stops.push(() => stopChild(stsGuard));
    await waitFor('sts-guard', 60_000, async () => {
      if (stsGuard.exitCode !== null) throw new Error(`sts-guard exited with ${stsGuard.exitCode}`);
      return (await stsGuardGet({ url: stsGuardUrl, caFile }, '/readyz')).statusCode === 200;
    });
    const webhooks = await renderWebhooks(
      binDir,
      dir,
      `127.0.0.1:${stsGuardPort}`,
      await readFile(caFile, 'utf8'),
    );
    await kubectl(['apply', '-f', '-'], webhooks);
    say(`sts-guard ready at ${stsGuardUrl} (pid ${stsGuard.pid})`);

    // The bare webhook on the same certificate, registered like sts-guard for its namespace.
    const barePort = await freePort();
    const bare = spawn(process.execPath, [join(repoRoot, 'bench/baseline-server.mjs')], {
      env: { PATH: process.env.PATH, PORT: String(barePort), HOST: '127.0.0.1', ...tls },
      stdio: 'ignore',
    });
    stops.push(() => stopChild(bare));
    await waitFor('the bare webhook', 30_000, async () => {
      if (bare.exitCode !== null) throw new Error(`the bare webhook exited with ${bare.exitCode}`);
      return (await stsGuardGet({ url: `https://127.0.0.1:${barePort}`, caFile }, '/')).statusCode > 0;
    });
    await kubectl(
      ['apply', '-f', '-'],
      registrationFor(webhooks, {
        prefix: 'bare',
        fromUrl: stsGuardUrl,
        toUrl: `https://127.0.0.1:${barePort}`,
        namespace: 'peers-bare',
      }),
    );
    say(`bare webhook ready (pid ${bare.pid})`);

    say('starting Kyverno (CRDs, namespace, ConfigMaps, admission controller)');
    const kyverno = await startKyverno({
      home: kyvernoHome,
      kubeconfig: admin,
      kubectl,
      dir: join(dir, 'logs'),
      namespaceLabel: KYVERNO_LABEL,
    });
    stops.push(() => kyverno.stop());
    await installPolicy(kubectl, kyvernoPolicy());
    say(`Kyverno ready at ${kyverno.url} (pid ${kyverno.pid}), policy Ready and its webhooks registered`);

    const peers: Record<PeerName, Peer> = {
      'sts-guard': {
        name: 'sts-guard',
        pid: stsGuard.pid!,
        webhooks: { mutate: 'mutate.sts-guard.io', validate: 'validate.sts-guard.io' },
        namespaceLabels: {},
        own: {
          metric: 'sts_guard_review_duration_seconds',
          scrape: async () => (await stsGuardGet({ url: stsGuardUrl, caFile }, '/metrics')).body,
        },
      },
      kyverno: {
        name: 'kyverno',
        pid: kyverno.pid,
        webhooks: KYVERNO_WEBHOOKS,
        namespaceLabels: { ...STS_GUARD_EXEMPT, ...KYVERNO_LABEL },
        own: {
          metric: 'kyverno_admission_review_duration_seconds',
          scrape: async () => (await fetch(kyverno.metricsUrl)).text(),
        },
      },
      bare: {
        name: 'bare',
        pid: bare.pid!,
        webhooks: { mutate: 'bare-mutate.sts-guard.io', validate: 'bare-validate.sts-guard.io' },
        namespaceLabels: STS_GUARD_EXEMPT,
      },
    };
    return {
      plane,
      binDir,
      dir,
      peers,
      kubectl,
      api,
      agent,
      async namespace(name, peer) {
        const labels = Object.entries(peers[peer].namespaceLabels).map(([k, v]) => `${k}=${v}`);
        // Labelled at creation, so no request in it ever reaches another peer.
        await kubectl(
          ['create', '-f', '-'],
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name, labels: Object.fromEntries(labels.map((l) => l.split('='))) },
          }),
        );
        await waitFor(`ServiceAccount ${name}/default`, 60_000, async () =>
          kubectl(['get', 'serviceaccount', 'default', '-n', name]).then(() => true),
        );
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
