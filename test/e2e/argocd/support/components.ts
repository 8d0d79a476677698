/**
 * Argo CD on the e2e control plane, the way its own developers run it locally (its Procfile):
 * one `argocd` binary per component, picked by ARGOCD_BINARY_NAME, outside the cluster with
 * ARGOCD_FAKE_IN_CLUSTER=true and a kubeconfig, plus Redis from Debian. Every port is a free
 * loopback port and every path lives in the state directory: the machine is shared.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../../support/processes.js';
import { type Started, startProcess, stopProcess, waitFor } from '../../support/control-plane.js';
import { type E2eState, kubectlOk } from '../../support/env.js';

export const ARGOCD_NAMESPACE = 'argocd';

export interface ArgoCdProcesses {
  redisPort: number;
  repoServer: string;
  /** http://127.0.0.1:<port>/metrics of each component. */
  metrics: { controller: string; repoServer: string; applicationSet: string };
  logs: Record<string, string>;
  kubeconfig: string;
  stop(): Promise<void>;
}

/** Answers true once Redis replies +PONG to an authenticated PING. */
function redisPing(port: number, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.write(`AUTH ${password}\r\nPING\r\n`);
    });
    let got = '';
    socket.on('data', (chunk) => {
      got += chunk.toString();
      if (got.includes('+PONG')) {
        socket.end();
        resolve(true);
      }
    });
    socket.on('error', () => resolve(false));
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.ok;
}

/**
 * What argocd-server and the install manifests would otherwise provide: the namespace, the CRDs
 * (server-side: too large for client-side apply), argocd-cm, argocd-secret and the `default`
 * AppProject. Settings are found by the label app.kubernetes.io/part-of=argocd.
 */
async function configureCluster(state: E2eState, argocdDir: string): Promise<void> {
  const k = (args: string[], input?: string) => kubectlOk(state, args, input);
  await k(['create', 'namespace', ARGOCD_NAMESPACE]);
  await k(['apply', '--server-side', '-f', join(argocdDir, 'crds')]);
  // `kubectl wait` errors out when it reads a CRD before the API server wrote any condition.
  for (let attempt = 1; ; attempt++) {
    try {
      await k(['wait', '--for=condition=Established', '--timeout=60s', '-f', join(argocdDir, 'crds')]);
      break;
    } catch (error) {
      if (attempt === 10) throw error;
      await sleep(500);
    }
  }
  const partOf = { 'app.kubernetes.io/part-of': 'argocd' };
  const objects = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'argocd-cm', labels: partOf }, data: {} },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'argocd-secret', labels: partOf },
      stringData: { 'server.secretkey': randomBytes(32).toString('base64') },
    },
    // argocd-server creates this one at start; it is not run here.
    {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'AppProject',
      metadata: { name: 'default' },
      spec: {
        sourceRepos: ['*'],
        destinations: [{ server: '*', namespace: '*' }],
        clusterResourceWhitelist: [{ group: '*', kind: '*' }],
      },
    },
  ];
  await k(
    ['apply', '-n', ARGOCD_NAMESPACE, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
}

/**
 * Starts Redis, the repo-server, the application controller and the ApplicationSet controller
 * from `argocdDir` (test/e2e/control-plane/build-argocd.sh). Stops what it started on failure.
 */
export async function startArgoCd(state: E2eState, argocdDir: string, dir: string): Promise<ArgoCdProcesses> {
  await mkdir(dir, { recursive: true });
  for (const sub of ['tls', 'ssh', 'gpg/keys', 'gpg/source', 'tmp'])
    await mkdir(join(dir, sub), { recursive: true });
  await configureCluster(state, argocdDir);

  // The controllers read their namespace from the kubeconfig's context, as in a pod.
  const kubeconfig = join(dir, 'argocd.kubeconfig');
  const admin = await readFile(state.adminKubeconfig, 'utf8');
  await writeFile(
    kubeconfig,
    admin.replace('      user: e2e\n', `      user: e2e\n      namespace: ${ARGOCD_NAMESPACE}\n`),
  );

  const started: Started[] = [];
  const stop = async () => {
    for (const s of started.reverse()) await stopProcess(s);
  };
  try {
    const password = randomBytes(16).toString('hex');
    const redisPort = await freePort();
    const redis = startProcess(dir, 'redis', 'redis-server', [
      '--bind',
      '127.0.0.1',
      '--port',
      String(redisPort),
      '--requirepass',
      password,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ]);
    started.push(redis);
    await waitFor('redis', redis, 30_000, () => redisPing(redisPort, password));

    const [repoPort, repoMetrics, controllerMetrics, appsetMetrics, appsetProbe, appsetWebhook] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const redisAddress = `127.0.0.1:${redisPort}`;
    const repoServer = `127.0.0.1:${repoPort}`;
    const common = {
      ARGOCD_FAKE_IN_CLUSTER: 'true',
      KUBECONFIG: kubeconfig,
      REDIS_PASSWORD: password,
      ARGOCD_TLS_DATA_PATH: join(dir, 'tls'),
      ARGOCD_SSH_DATA_PATH: join(dir, 'ssh'),
      // The askpass socket defaults to /tmp/reposerver-ask-pass.sock, shared by the whole machine.
      ARGOCD_ASK_PASS_SOCK: join(dir, 'askpass.sock'),
      TMPDIR: join(dir, 'tmp'),
    };
    const binary = join(argocdDir, 'argocd');

    const repo = startProcess(
      dir,
      'argocd-repo-server',
      binary,
      [
        '--address',
        '127.0.0.1',
        '--port',
        String(repoPort),
        '--metrics-address',
        '127.0.0.1',
        '--metrics-port',
        String(repoMetrics),
        '--redis',
        redisAddress,
        '--logformat',
        'text',
      ],
      {
        ...common,
        ARGOCD_BINARY_NAME: 'argocd-repo-server',
        ARGOCD_GPG_ENABLED: 'false',
        ARGOCD_GNUPGHOME: join(dir, 'gpg/keys'),
        ARGOCD_GPG_DATA_PATH: join(dir, 'gpg/source'),
        // git-verify-wrapper.sh from the same module, and the kustomize the bundle is tested with.
        PATH: `${join(argocdDir, 'bin')}${delimiter}${state.binDir}${delimiter}${process.env.PATH}`,
      },
    );
    started.push(repo);
    await waitFor('argocd-repo-server', repo, 60_000, () =>
      httpOk(`http://127.0.0.1:${repoMetrics}/healthz`),
    );

    const controller = startProcess(
      dir,
      'argocd-application-controller',
      binary,
      [
        '--redis',
        redisAddress,
        '--repo-server',
        repoServer,
        '--metrics-port',
        String(controllerMetrics),
        '--logformat',
        'text',
      ],
      {
        ...common,
        ARGOCD_BINARY_NAME: 'argocd-application-controller',
        // The shard comes from the StatefulSet ordinal in the host name, as in the install.
        HOSTNAME: 'argocd-application-controller-0',
      },
    );
    started.push(controller);
    await waitFor('argocd-application-controller', controller, 60_000, () =>
      httpOk(`http://127.0.0.1:${controllerMetrics}/healthz`),
    );

    const applicationSet = startProcess(
      dir,
      'argocd-applicationset-controller',
      binary,
      [
        '--metrics-addr',
        `127.0.0.1:${appsetMetrics}`,
        '--probe-addr',
        `127.0.0.1:${appsetProbe}`,
        '--webhook-addr',
        `127.0.0.1:${appsetWebhook}`,
        '--argocd-repo-server',
        repoServer,
        '--logformat',
        'text',
      ],
      { ...common, ARGOCD_BINARY_NAME: 'argocd-applicationset-controller' },
    );
    started.push(applicationSet);
    // It registers no health checks (its probe address answers 404); metrics come up with the manager.
    await waitFor('argocd-applicationset-controller', applicationSet, 60_000, () =>
      httpOk(`http://127.0.0.1:${appsetMetrics}/metrics`),
    );

    return {
      redisPort,
      repoServer,
      metrics: {
        controller: `http://127.0.0.1:${controllerMetrics}/metrics`,
        repoServer: `http://127.0.0.1:${repoMetrics}/metrics`,
        applicationSet: `http://127.0.0.1:${appsetMetrics}/metrics`,
      },
      logs: Object.fromEntries(started.map((s) => [s.name, s.log])),
      kubeconfig,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
