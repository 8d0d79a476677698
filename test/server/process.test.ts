import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import t from 'tap';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, replicaSet, service } from '../support/fixtures.js';
import { httpsCall } from '../support/https.js';
import { ensureBuilt, repoPath, repoRoot } from '../support/repo.js';
import { eventually } from '../support/wait.js';

/**
 * The built server (`node dist/bundle/server.mjs`, what `npm start` and the image run) as a real
 * child process: shutdown under load, the client CA and certificate reload as main.ts wires them.
 */

const MAIN = repoPath('dist/bundle/server.mjs');

// `npm test` builds before tap; a lone `npx tap` of this file builds when dist is missing or stale.
await ensureBuilt(MAIN);

const work = await mkdtemp(join(tmpdir(), 'sts-guard-process-'));
const serving = await createDevelopmentCertificate(join(work, 'tls'));
const api = await new LocalApiServer().start();
api.put(service('mongodb-headless'));
const kubeconfigFile = join(work, 'kubeconfig.json');
await writeFile(kubeconfigFile, api.kubeConfig().exportConfig());
t.teardown(async () => {
  await api.close();
  await rm(work, { recursive: true, force: true });
});

class ServerProcess {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly exited: Promise<number | null>;
  port = 0;
  private constructor(readonly child: ChildProcess) {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  /** The first log line matching `match`, waiting for it (lines are flushed every 250 ms). */
  async line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('no such log line within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Starts dist/bundle/server.mjs on a free loopback port and waits until it listens. */
  static async start(
    env: Record<string, string> = {},
    where: { entry: string; cwd: string; ca?: () => Promise<string> } = { entry: MAIN, cwd: work },
  ): Promise<ServerProcess> {
    const child = spawn(process.execPath, [where.entry], {
      cwd: where.cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: work,
        HOST: '127.0.0.1',
        PORT: '0',
        TLS_CERT_FILE: serving.certFile,
        TLS_KEY_FILE: serving.keyFile,
        KUBECONFIG: kubeconfigFile,
        SERVICE_CACHE: 'off',
        // Generous: this is about shutdown, not look-up budgets, on a possibly loaded machine.
        LOOKUP_TIMEOUT_MS: '10000',
        SHUTDOWN_TIMEOUT_MS: '10000',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const server = new ServerProcess(child);
    t.teardown(() => server.kill());
    const deadline = Date.now() + 20_000;
    for (;;) {
      const listening = server.lines.find((l) =>
        String(l.msg).startsWith('Server listening at https://127.0.0.1'),
      );
      if (listening) {
        server.port = Number(new URL(String(listening.msg).replace('Server listening at ', '')).port);
        // One review first, so the stream below does not include the first connection to the API server.
        await call(server.port, '/validate', {
          body: JSON.stringify(admissionReview({ object: replicaSet() })),
          ...(where.ca ? { ca: await where.ca() } : {}),
        });
        return server;
      }
      if (child.exitCode !== null)
        throw new Error(`sts-guard exited with ${child.exitCode} before listening`);
      if (Date.now() > deadline) throw new Error('sts-guard did not start listening within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  terminate(): void {
    this.child.kill('SIGTERM');
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** A request to the server under test, trusting the serving certificate unless told otherwise. */
const call = (
  port: number,
  path: string,
  o: { body?: string; agent?: Agent | false; key?: string; cert?: string; ca?: string } = {},
) => httpsCall(port, path, { ...o, ca: o.ca ?? serving.cert });

/** A review that makes one Service look-up (slowed by the local API server), answered or why not. */
async function review(port: number, agent: Agent): Promise<string | undefined> {
  const sent = admissionReview({ object: replicaSet() });
  try {
    const answer = await call(port, '/validate', { body: JSON.stringify(sent), agent });
    if (answer.statusCode !== 200) return `HTTP ${answer.statusCode}: ${answer.body}`;
    const response = JSON.parse(answer.body).response;
    if (response?.uid !== sent.request.uid || response.allowed !== true) return `unexpected ${answer.body}`;
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

t.test(
  'the bundle runs on its own, as in the image: no node_modules, a development certificate',
  async (t) => {
    // What the Dockerfile copies (dist/bundle only), somewhere no node_modules/ can be found.
    const image = await mkdtemp(join(tmpdir(), 'sts-guard-image-'));
    t.teardown(() => rm(image, { recursive: true, force: true }));
    await cp(join(repoRoot, 'dist/bundle'), join(image, 'dist/bundle'), { recursive: true });
    // No TLS_CERT_FILE/TLS_KEY_FILE: `npm start`'s development certificate, made by the bundled selfsigned.
    const ca = () => readFile(join(image, 'certs/dev/tls.crt'), 'utf8');
    const server = await ServerProcess.start(
      { TLS_CERT_FILE: '', TLS_KEY_FILE: '' },
      { entry: join(image, 'dist/bundle/server.mjs'), cwd: image, ca },
    );
    t.ok(
      server.lines.some((l) => String(l.msg).startsWith('TLS_CERT_FILE/TLS_KEY_FILE not set')),
      'says it serves a development certificate',
    );
    const mutated = await call(server.port, '/mutate', {
      body: JSON.stringify(admissionReview({ object: replicaSet() })),
      ca: await ca(),
    });
    t.equal(mutated.statusCode, 200);
    t.type(JSON.parse(mutated.body).response.patch, 'string', 'the MongoDB StatefulSet is patched');
    // start() sent a /validate first: its live look-up loaded the bundled Kubernetes client.
    const validated = await server.line((l) => l.msg === 'admission review' && l.webhook === 'validate');
    t.equal(validated.verdict, 'allowed', 'the bundled Kubernetes client found the headless Service');
    // The headless Service, then the namespace's Services for the client-routing rule.
    t.same(validated.lookups, ['found', 'found']);
  },
);

t.test('SIGTERM: in-flight reviews are answered, then the process exits 0', async (t) => {
  api.misbehaviour = { kind: 'delay', ms: 400 };
  t.teardown(() => api.behave());
  const server = await ServerProcess.start({ SHUTDOWN_DRAIN_MS: '0' });
  const agent = new Agent({ keepAlive: true, maxSockets: 6 });
  t.teardown(() => agent.destroy());

  const before = api.requests.length;
  const inFlight = Array.from({ length: 6 }, () => review(server.port, agent));
  // Every review is waiting on its Service look-up when the signal arrives.
  await eventually(
    'all six Service look-ups at the API server',
    () => (api.requests.length >= before + 6 ? true : undefined),
    10_000,
    10,
  );
  server.terminate();

  t.same(await Promise.all(inFlight), Array(6).fill(undefined), 'all six in-flight reviews answered');
  t.equal(await server.exited, 0, 'exit code 0');
  t.ok(server.lines.some((l) => l.msg === 'shutting down: not ready, finishing in-flight reviews'));
});

t.test('a rolling restart under a steady stream of reviews fails none of them', async (t) => {
  api.misbehaviour = { kind: 'delay', ms: 20 };
  t.teardown(() => api.behave());
  const drainMs = 1000;
  const old = await ServerProcess.start({ SHUTDOWN_DRAIN_MS: String(drainMs) });
  const next = await ServerProcess.start({ SHUTDOWN_DRAIN_MS: String(drainMs) });
  const instances = [old, next];
  const agents = new Map(instances.map((s) => [s, new Agent({ keepAlive: true, maxSockets: 4 })]));
  t.teardown(() => {
    for (const agent of agents.values()) agent.destroy();
  });

  // Endpoints, as kubelet and the endpoints controller keep them: ready while /readyz says 200.
  const ready = new Set(instances);
  const readinessSeen = new Map(instances.map((s) => [s, [] as Array<number | string>]));
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await Promise.all(
        instances.map(async (s) => {
          const seen = await call(s.port, '/readyz').then(
            (a) => a.statusCode,
            (e: NodeJS.ErrnoException) => e.code ?? 'error',
          );
          readinessSeen.get(s)?.push(seen);
          if (seen === 200) ready.add(s);
          else ready.delete(s);
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();

  // Four clients send reviews back to back, each to the first ready instance, with keep-alive.
  const failures: string[] = [];
  const served = new Map(instances.map((s) => [s, 0]));
  let sending = true;
  const clients = Array.from({ length: 4 }, async () => {
    while (sending) {
      const target = instances.find((s) => ready.has(s));
      if (!target) {
        failures.push('no ready instance');
        break;
      }
      const failure = await review(target.port, agents.get(target)!);
      if (failure) failures.push(failure);
      else served.set(target, (served.get(target) ?? 0) + 1);
    }
  });

  await new Promise((resolve) => setTimeout(resolve, 500));
  old.terminate();
  const exitCode = await old.exited;
  await new Promise((resolve) => setTimeout(resolve, 300));
  sending = false;
  await Promise.all(clients);
  polling = false;
  await poller;

  t.same(failures, [], 'zero failed reviews');
  t.equal(exitCode, 0, 'the old instance exited 0');
  t.ok(
    (served.get(old) ?? 0) > 0 && (served.get(next) ?? 0) > 0,
    `served: old ${served.get(old)}, next ${served.get(next)}`,
  );
  t.ok(
    readinessSeen.get(old)?.includes(503),
    'the old instance reported not-ready (readyz 503) while draining',
  );
  t.equal(readinessSeen.get(old)?.at(-1), 'ECONNREFUSED', 'then closed its listener');
  t.notOk(
    readinessSeen.get(next)?.some((s) => s !== 200),
    'the next instance stayed ready',
  );
  await next.kill();
});

t.test('TLS_CLIENT_CA_FILE: reviews need a client certificate from that CA; probes do not', async (t) => {
  const ca = await generate([{ name: 'commonName', value: 'webhook client CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const client = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'extKeyUsage', clientAuth: true }],
    ca: { key: ca.private, cert: ca.cert },
  });
  const caFile = join(work, 'client-ca.crt');
  await writeFile(caFile, ca.cert);
  const server = await ServerProcess.start({ TLS_CLIENT_CA_FILE: caFile, SHUTDOWN_DRAIN_MS: '0' });
  const body = JSON.stringify(admissionReview({ object: replicaSet({ replicas: 1 }) }));

  t.equal((await call(server.port, '/validate', { body })).statusCode, 401, 'no client certificate');
  const withCertificate = await call(server.port, '/validate', {
    body,
    key: client.private,
    cert: client.cert,
  });
  t.equal(withCertificate.statusCode, 200, 'a client certificate signed by the CA');
  t.equal((await call(server.port, '/readyz')).statusCode, 200, 'kubelet probes need none');
  server.terminate();
  t.equal(await server.exited, 0);
});

t.test('a reloaded serving certificate moves the expiry metric', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-reload-metric-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The shared serving pair, copied, so this test can replace the files.
  const first = { cert: serving.cert, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await writeFile(first.certFile, serving.cert);
  await writeFile(first.keyFile, serving.key);
  const server = await ServerProcess.start({
    TLS_CERT_FILE: first.certFile,
    TLS_KEY_FILE: first.keyFile,
    SHUTDOWN_DRAIN_MS: '0',
  });
  t.equal(
    await expiryTrusting(server.port, [first.cert]),
    Date.parse(new X509Certificate(first.cert).validTo) / 1000,
  );

  const renewed = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(),
    notAfterDate: new Date(Date.now() + 90 * 24 * 3600 * 1000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
  });
  await writeFile(first.keyFile, renewed.private);
  await writeFile(first.certFile, renewed.cert);
  const wanted = Date.parse(new X509Certificate(renewed.cert).validTo) / 1000;
  // Until the reload is noticed the old certificate still serves: trust either.
  const deadline = Date.now() + 10_000;
  let seen = 0;
  while (Date.now() < deadline) {
    seen = await expiryTrusting(server.port, [first.cert, renewed.cert]);
    if (seen === wanted) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(seen, wanted, 'the gauge is the renewed certificate notAfter');
  server.terminate();
  t.equal(await server.exited, 0);
});

/** The expiry gauge, read over HTTPS trusting `ca`. */
async function expiryTrusting(port: number, ca: string[]): Promise<number> {
  const { body } = await httpsCall(port, '/metrics', { ca });
  const line = body.split('\n').find((l) => l.startsWith('sts_guard_certificate_expiry_timestamp_seconds '));
  return Number(line?.split(' ')[1]);
}
