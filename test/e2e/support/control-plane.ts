import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { httpsCall } from '../../support/https.js';
import { freePort, logTail } from '../../support/processes.js';

const run = promisify(execFile);

/**
 * A real Kubernetes control plane on loopback, as controller-runtime's envtest runs one: etcd,
 * kube-apiserver (with the admission plugins a kubeadm cluster enables) and
 * kube-controller-manager (so the StatefulSet controller creates PVCs and Pods). There is no
 * kubelet or scheduler: Pods are created and stored but never run.
 */
export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  server: string;
  /** A kubeconfig for a cluster admin (client certificate in group system:masters). */
  adminKubeconfig: string;
  /** The cluster CA (PEM), which signs the API server's serving and client certificates. */
  caFile: string;
  dir: string;
  /** kube-apiserver's audit log (JSON lines, Metadata level for StatefulSets and Services). */
  auditLog: string;
  /** kube-apiserver's own /metrics, read as the admin. */
  apiserverMetrics(): Promise<string>;
  stop(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    throw new Error(`openssl ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr ?? error}`);
  }
}

/** A certificate signed by the cluster CA; `subject` as openssl writes it (/CN=.../O=...). */
async function signedCertificate(dir: string, name: string, subject: string, extensions: string) {
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(['genrsa', '-out', `${name}.key`, '2048'], dir);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

async function pki(dir: string): Promise<void> {
  await openssl(['genrsa', '-out', 'ca.key', '2048'], dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=sts-guard-e2e-ca',
      '-days',
      '2',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  const serving = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  ].join('\n');
  const client =
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth';
  await signedCertificate(dir, 'apiserver', '/CN=kube-apiserver', serving);
  await signedCertificate(dir, 'admin', '/O=system:masters/CN=e2e-admin', client);
  await signedCertificate(dir, 'controller-manager', '/CN=system:kube-controller-manager', client);
  // The key that signs ServiceAccount tokens (TokenRequest) and checks them.
  await openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  await openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

export function kubeconfigYaml(
  server: string,
  caFile: string,
  user: { cert: string; key: string } | { token: string },
) {
  const credentials =
    'token' in user
      ? `      token: ${user.token}`
      : `      client-certificate: ${user.cert}\n      client-key: ${user.key}`;
  return `apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster:
      server: ${server}
      certificate-authority: ${caFile}
users:
  - name: e2e
    user:
${credentials}
contexts:
  - name: e2e
    context:
      cluster: e2e
      user: e2e
current-context: e2e
`;
}

/** A child process this suite started, with its log file. */
export interface Started {
  name: string;
  child: ChildProcess;
  log: string;
}

export function startProcess(
  dir: string,
  name: string,
  binary: string,
  args: string[],
  env?: Record<string, string>,
): Started {
  const log = join(dir, `${name}.log`);
  const out = createWriteStream(log);
  const child = spawn(binary, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ? { ...process.env, ...env } : process.env,
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return { name, child, log };
}

/** GET `path` on the API server as the admin (client certificate in system:masters). */
function adminGet(server: string, path: string, admin: { ca: string; cert: string; key: string }) {
  return httpsCall(Number(new URL(server).port), path, admin);
}

/** Polls `ready` every 250 ms; fails early, with the log's tail, if the process exits. */
export async function waitFor(
  what: string,
  started: Started,
  timeoutMs: number,
  ready: () => Promise<boolean>,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) {
      throw new Error(
        `${started.name} exited with ${started.child.exitCode}:\n${await logTail(started.log, 15)}`,
      );
    }
    if (await ready().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms:\n${await logTail(started.log, 15)}`);
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
export async function stopProcess(started: Started): Promise<void> {
  const { child } = started;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager from `binDir` (test/e2e/control-plane/
 * build.sh), with their state, certificates and logs in `dir`.
 */
export async function startControlPlane(binDir: string, dir: string): Promise<ControlPlane> {
  await mkdir(dir, { recursive: true });
  await pki(dir);
  const [etcdClient, etcdPeer, apiserverPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiserverPort}`;
  const caFile = join(dir, 'ca.crt');
  const admin = { ca: await readFile(caFile, 'utf8'), cert: '', key: '' };
  admin.cert = await readFile(join(dir, 'admin.crt'), 'utf8');
  admin.key = await readFile(join(dir, 'admin.key'), 'utf8');
  const started: Started[] = [];
  const stop = async () => {
    for (const s of started.reverse()) await stopProcess(s);
  };

  try {
    const etcd = startProcess(dir, 'etcd', join(binDir, 'etcd'), [
      '--name=e2e',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=e2e=http://127.0.0.1:${etcdPeer}`,
      // A throwaway test store: durability on disk buys nothing and costs seconds.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    started.push(etcd);
    await waitFor('etcd', etcd, 30_000, async () => {
      const res = await fetch(`http://127.0.0.1:${etcdClient}/health`);
      return res.ok;
    });

    // Audit at Metadata level carries admission webhooks' audit annotations
    // (<webhook>/<key>), which is where sts-guard says why it stepped aside or waived a rule.
    const auditPolicy = join(dir, 'audit-policy.yaml');
    const auditLog = join(dir, 'audit.log');
    await writeFile(
      auditPolicy,
      [
        'apiVersion: audit.k8s.io/v1',
        'kind: Policy',
        'omitStages: ["RequestReceived"]',
        'rules:',
        '  - level: Metadata',
        '    resources:',
        '      - group: apps',
        '        resources: ["statefulsets"]',
        '      - group: ""',
        '        resources: ["services"]',
        '  - level: None',
        '',
      ].join('\n'),
    );
    const apiserver = startProcess(dir, 'kube-apiserver', join(binDir, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // The endpoint reconciler refuses a loopback address for the `kubernetes` Service's
      // endpoints; nothing here reaches the API server through that Service.
      '--endpoint-reconciler-type=none',
      `--secure-port=${apiserverPort}`,
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      '--authorization-mode=Node,RBAC',
      // kubeadm's choice; every plugin enabled by default (NamespaceLifecycle, LimitRanger,
      // ServiceAccount, DefaultStorageClass, MutatingAdmissionWebhook, ValidatingAdmissionWebhook,
      // ValidatingAdmissionPolicy, ResourceQuota, ...) stays on.
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      // Addresses the API server only allocates to Services; nothing here routes to them.
      '--service-cluster-ip-range=10.96.0.0/16',
      `--audit-policy-file=${auditPolicy}`,
      `--audit-log-path=${auditLog}`,
      '--v=1',
    ]);
    started.push(apiserver);
    await waitFor('kube-apiserver', apiserver, 90_000, async () => {
      const res = await adminGet(server, '/readyz', admin);
      return res.statusCode === 200;
    });

    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    await writeFile(
      adminKubeconfig,
      kubeconfigYaml(server, caFile, { cert: join(dir, 'admin.crt'), key: join(dir, 'admin.key') }),
    );
    const controllerKubeconfig = join(dir, 'controller-manager.kubeconfig');
    await writeFile(
      controllerKubeconfig,
      kubeconfigYaml(server, caFile, {
        cert: join(dir, 'controller-manager.crt'),
        key: join(dir, 'controller-manager.key'),
      }),
    );
    const controllerPort = await freePort();
    const controllerManager = startProcess(
      dir,
      'kube-controller-manager',
      join(binDir, 'kube-controller-manager'),
      [
        `--kubeconfig=${controllerKubeconfig}`,
        `--authentication-kubeconfig=${controllerKubeconfig}`,
        `--authorization-kubeconfig=${controllerKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${controllerPort}`,
        '--leader-elect=false',
        // As kubeadm runs it: each controller acts as its own ServiceAccount under RBAC.
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${join(dir, 'sa.key')}`,
        `--root-ca-file=${caFile}`,
        `--cluster-signing-cert-file=${caFile}`,
        `--cluster-signing-key-file=${join(dir, 'ca.key')}`,
        '--v=1',
      ],
    );
    started.push(controllerManager);
    await waitFor('kube-controller-manager', controllerManager, 60_000, async () => {
      // Ready for the tests once the ServiceAccount controller has made `default` in `default`:
      // Pods (created by the StatefulSet controller) are refused until it exists.
      const res = await adminGet(server, '/api/v1/namespaces/default/serviceaccounts/default', admin);
      return res.statusCode === 200;
    });

    return {
      server,
      adminKubeconfig,
      caFile,
      dir,
      auditLog,
      apiserverMetrics: async () => (await adminGet(server, '/metrics', admin)).body,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
