import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import t from 'tap';
import { admissionReview, statefulSet } from '../support/fixtures.js';
import { repoRoot } from '../support/repo.js';

const run = promisify(execFile);
const work = await mkdtemp(join(tmpdir(), 'sts-guard-reload-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

/** A serving certificate from certs/generate.sh; each call issues a new one under the same CA. */
async function issueCertificate(): Promise<{ cert: string; key: string; fingerprint: string }> {
  const out = join(work, 'issued');
  await run('bash', [join(repoRoot, 'certs/generate.sh'), '--out', out]);
  const cert = await readFile(join(out, 'tls.crt'), 'utf8');
  const key = await readFile(join(out, 'tls.key'), 'utf8');
  return { cert, key, fingerprint: new X509Certificate(cert).fingerprint256 };
}

/**
 * A directory laid out as kubelet lays out a Secret volume: tls.crt -> ..data/tls.crt, and an
 * update writes a new timestamped directory and renames a `..data` symlink over the old one.
 */
class SecretVolume {
  private generation = 0;
  constructor(readonly dir: string) {}

  async publish(files: Record<string, string>): Promise<void> {
    const version = `..${Date.now()}_${++this.generation}`;
    await mkdir(join(this.dir, version), { recursive: true });
    for (const [name, content] of Object.entries(files))
      await writeFile(join(this.dir, version, name), content);
    await symlink(version, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.generation === 1) {
      for (const name of Object.keys(files)) await symlink(join('..data', name), join(this.dir, name));
    }
  }
}

/** `npm start`'s entry point (src/server/main.ts) as a real child process, and its log lines. */
class WebhookProcess {
  readonly lines: Array<Record<string, unknown>> = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly child: ChildProcess) {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push({ msg: line });
        }
        for (const wake of this.waiters.splice(0)) wake();
      }
    });
  }

  static start(env: Record<string, string>): WebhookProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return new WebhookProcess(child);
  }

  /** Resolves with the first log line (from index `from` on) that `matches`; bounded at 20 s. */
  async waitFor(matches: (line: Record<string, unknown>) => boolean, from = 0) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const found = this.lines.slice(from).find(matches);
      if (found) return found;
      if (this.child.exitCode !== null) throw new Error(`sts-guard exited with ${this.child.exitCode}`);
      if (Date.now() > deadline) throw new Error('timed out waiting for a log line');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}

interface Observation {
  startedAt: number;
  fingerprint?: string;
  failure?: string;
}

const first = await issueCertificate();
const volume = new SecretVolume(join(work, 'tls'));
await volume.publish({ 'tls.crt': first.cert, 'tls.key': first.key });
const ca = await readFile(join(work, 'issued', 'ca.crt'), 'utf8');

const webhook = WebhookProcess.start({
  TLS_CERT_FILE: join(volume.dir, 'tls.crt'),
  TLS_KEY_FILE: join(volume.dir, 'tls.key'),
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  // This review needs no Service look-up; no cluster is configured.
  KUBECONFIG: join(work, 'no-kubeconfig'),
});
t.teardown(() => webhook.stop());
const listening = await webhook.waitFor((l) => String(l.msg).startsWith('Server listening at https://'));
const port = new URL(String(listening.msg).replace('Server listening at ', '')).port;

const review = JSON.stringify(admissionReview({ object: statefulSet({ replicas: 1 }) }));

/** One POST /validate, as the API server sends it: trusting only the CA, checking the Service name. */
function validate(agent: Agent | false): Promise<Observation> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/validate',
        method: 'POST',
        ca,
        servername: 'sts-guard.sts-guard.svc',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => {
          const allowed = res.statusCode === 200 && JSON.parse(body).response?.allowed === true;
          resolve({
            startedAt,
            fingerprint,
            ...(allowed ? {} : { failure: `HTTP ${res.statusCode}: ${body}` }),
          });
        });
      },
    );
    req.on('error', (err) => resolve({ startedAt, failure: err.message }));
    req.end(review);
  });
}

/** Sends requests back to back until stopped (or 2,000 requests), like a busy API server. */
function keepSending(agent: Agent | false) {
  const observations: Observation[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped && observations.length < 2000) observations.push(await validate(agent));
  })();
  return {
    observations,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

async function untilCount(observations: Observation[], count: number, after: number) {
  for (let i = 0; i < 400 && observations.filter((o) => o.startedAt > after).length < count; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('a renewed certificate is served to new connections without a failed request', async (t) => {
  const keptAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => keptAlive.destroy());
  const fresh = keepSending(false);
  const reused = keepSending(keptAlive);
  await untilCount(fresh.observations, 20, 0);

  // Renewal, as cert-manager and kubelet do it: a new pair from the same CA, swapped in atomically.
  const second = await issueCertificate();
  t.not(second.fingerprint, first.fingerprint);
  const logIndex = webhook.lines.length;
  const renewedAt = Date.now();
  await volume.publish({ 'tls.crt': second.cert, 'tls.key': second.key });
  await webhook.waitFor((l) => l.msg === 'serving certificate reloaded', logIndex);
  const reloadedAt = Date.now();
  await untilCount(fresh.observations, 20, reloadedAt);
  await fresh.stop();
  await reused.stop();

  const all = [...fresh.observations, ...reused.observations];
  t.same(
    all.filter((o) => o.failure),
    [],
    `none of ${all.length} requests failed (${fresh.observations.length} on new connections)`,
  );
  // Requests started between the swap and the reload may get either certificate.
  const before = fresh.observations.filter((o) => o.startedAt < renewedAt);
  t.ok(before.length >= 20, 'new connections before the renewal…');
  t.ok(
    before.every((o) => o.fingerprint === first.fingerprint),
    '…got the first certificate',
  );
  const after = fresh.observations.filter((o) => o.startedAt > reloadedAt);
  t.ok(after.length >= 20, 'new connections after the reload…');
  t.ok(
    after.every((o) => o.fingerprint === second.fingerprint),
    '…get the renewed certificate',
  );
  // An established connection keeps the certificate it was opened with and goes on working.
  const reusedAfter = reused.observations.filter((o) => o.startedAt > reloadedAt);
  t.ok(reusedAfter.length > 0, 'the kept-alive connection was used after the reload');
  t.ok(
    reused.observations.every((o) => o.fingerprint === first.fingerprint),
    'on the connection opened before the renewal',
  );
});

t.test('a mismatched pair is skipped: the previous certificate stays in service', async (t) => {
  const current = new X509Certificate(await readFile(join(volume.dir, 'tls.crt'), 'utf8')).fingerprint256;
  const next = await issueCertificate();
  const stale = await readFile(join(volume.dir, 'tls.key'), 'utf8');

  const fresh = keepSending(false);
  await untilCount(fresh.observations, 5, 0);
  // A new certificate with the old key: the server cannot use it and must not try.
  let logIndex = webhook.lines.length;
  await volume.publish({ 'tls.crt': next.cert, 'tls.key': stale });
  const failed = await webhook.waitFor(
    (l) => String(l.msg).startsWith('certificate reload failed'),
    logIndex,
  );
  t.match(failed, { level: 40 }, 'logged as a warning');
  const rejectedAt = Date.now();
  await untilCount(fresh.observations, 10, rejectedAt);
  const duringBadPair = fresh.observations.filter((o) => o.startedAt > rejectedAt);
  t.ok(
    duringBadPair.every((o) => o.fingerprint === current && !o.failure),
    'still serving the previous certificate, without failures',
  );

  // The matching key arrives: now the new certificate is served.
  logIndex = webhook.lines.length;
  await volume.publish({ 'tls.crt': next.cert, 'tls.key': next.key });
  await webhook.waitFor((l) => l.msg === 'serving certificate reloaded', logIndex);
  const reloadedAt = Date.now();
  await untilCount(fresh.observations, 10, reloadedAt);
  await fresh.stop();
  t.same(
    fresh.observations.filter((o) => o.failure),
    [],
    'no request failed',
  );
  const after = fresh.observations.filter((o) => o.startedAt > reloadedAt);
  t.ok(
    after.length >= 10 && after.every((o) => o.fingerprint === next.fingerprint),
    'the new pair is served',
  );
});
