import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Deployment, V1Namespace, V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import t from 'tap';
import type { AdmissionReview } from '../../src/admission/types.js';
import { buildApp } from '../../src/server/app.js';
import { admissionReview, defaultSettings, statefulSet } from '../support/fixtures.js';
import { repoRoot } from '../support/repo.js';
import { Rendered } from './render.js';

const run = promisify(execFile);
const script = join(repoRoot, 'certs/generate.sh');
const work = await mkdtemp(join(tmpdir(), 'sts-guard-certs-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

async function generate(...args: string[]) {
  const { stdout } = await run('bash', [script, ...args], { cwd: work });
  return stdout;
}

async function openssl(...args: string[]) {
  return (await run('openssl', args)).stdout;
}

const decode = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('utf8');

const out = join(work, 'out');
const functionHost = 'abcdefghij.lambda-url.eu-west-1.on.aws';
await generate('--out', out, '--host', functionHost);
const file = (name: string) => readFile(join(out, name), 'utf8');

t.test('creates a CA and a serving certificate for sts-guard.<ns>.svc and the serverless host', async (t) => {
  const sans = await openssl('x509', '-in', join(out, 'tls.crt'), '-noout', '-ext', 'subjectAltName');
  for (const name of [
    'DNS:sts-guard.sts-guard.svc',
    'DNS:sts-guard.sts-guard.svc.cluster.local',
    `DNS:${functionHost}`,
  ]) {
    t.match(sans, name, `SAN ${name}`);
  }
  const verified = await openssl('verify', '-CAfile', join(out, 'ca.crt'), join(out, 'tls.crt'));
  t.match(verified, ': OK', 'the serving certificate chains to the CA');

  const serving = new X509Certificate(await file('tls.crt'));
  const ca = new X509Certificate(await file('ca.crt'));
  t.equal(serving.ca, false, 'the serving certificate cannot sign others');
  t.equal(ca.ca, true, 'the CA is a CA');
  t.equal(serving.checkHost('sts-guard.sts-guard.svc'), 'sts-guard.sts-guard.svc', 'valid for the Service');
  t.match(serving.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1'], 'extended key usage: serverAuth');
  t.ok(serving.checkPrivateKey(createPrivateKey(await file('tls.key'))), 'tls.key belongs to tls.crt');
});

t.test('keys are private to their owner and never committed', async (t) => {
  for (const key of ['ca.key', 'tls.key']) {
    t.equal((await stat(join(out, key))).mode & 0o777, 0o600, `${key} is mode 0600`);
  }
  t.equal(await file('.gitignore'), '*\n', 'the output directory ignores itself');
  // The default output directory is ignored by the repository too.
  const ignored = await run('git', ['check-ignore', 'certs/out/tls.key', 'certs/out/kustomization.yaml'], {
    cwd: repoRoot,
  });
  t.match(ignored.stdout, 'certs/out/tls.key');
});

t.test(
  'the generated kustomization adds the Secret and the CA bundle to both webhook configurations',
  async (t) => {
    const rendered = await Rendered.of(out);
    const secret = rendered.one<V1Secret>('Secret', 'sts-guard-tls');
    t.equal(secret.type, 'kubernetes.io/tls');
    t.equal(secret.metadata?.namespace, 'sts-guard');
    t.equal(decode(secret.data?.['tls.crt']), await file('tls.crt'));
    t.equal(decode(secret.data?.['tls.key']), await file('tls.key'));

    const ca = await file('ca.crt');
    const webhooks = rendered.webhooks();
    t.equal(webhooks.length, 3);
    for (const w of webhooks) t.equal(decode(w.clientConfig.caBundle), ca, `${w.name}: caBundle is the CA`);

    const pod = rendered.one<V1Deployment>('Deployment').spec?.template.spec;
    t.ok(
      pod?.volumes?.some((v) => v.secret?.secretName === secret.metadata?.name),
      'the Deployment mounts this Secret',
    );
  },
);

t.test('the rendered pair serves TLS that a client trusting only the caBundle accepts', async (t) => {
  // As kube-apiserver does: trust only clientConfig.caBundle, check the name sts-guard.sts-guard.svc.
  const rendered = await Rendered.of(out);
  const secret = rendered.one<V1Secret>('Secret', 'sts-guard-tls');
  const caBundle = decode(rendered.mutatingWebhooks()[0]?.clientConfig.caBundle);
  const app = await buildApp({
    settings: defaultSettings(),
    services: { lookup: async () => ({ outcome: 'not-found' }) },
    bodyLimitBytes: 1024 * 1024,
    logger: pino({ level: 'silent' }),
    https: { cert: decode(secret.data?.['tls.crt']), key: decode(secret.data?.['tls.key']) },
  });
  t.teardown(() => app.close());
  const origin = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
  const review = admissionReview({ object: statefulSet({ replicas: 1 }) });
  const answer = await new Promise<AdmissionReview>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: origin.port,
        path: '/validate',
        method: 'POST',
        ca: caBundle,
        servername: 'sts-guard.sts-guard.svc',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve(JSON.parse(body)));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(review));
  });
  t.equal(answer.response?.uid, review.request?.uid);
  t.equal(answer.response?.allowed, true);
});

t.test('running it again renews the serving certificate under the same CA', async (t) => {
  const before = { ca: await file('ca.crt'), serving: new X509Certificate(await file('tls.crt')) };
  const stdout = await generate('--out', out);
  t.match(stdout, 'reusing the CA');
  t.equal(await file('ca.crt'), before.ca, 'the caBundle the API server trusts is unchanged');
  const after = new X509Certificate(await file('tls.crt'));
  t.not(after.serialNumber, before.serving.serialNumber, 'a new serving certificate');
  t.ok(after.verify(new X509Certificate(before.ca).publicKey), 'signed by the same CA');

  const renewed = await generate('--out', out, '--new-ca');
  t.match(renewed, 'created a new CA');
  t.not(await file('ca.crt'), before.ca, '--new-ca replaces the CA');
});

t.test(
  '--namespace puts sts-guard, its certificate and its webhook exclusions in that namespace',
  async (t) => {
    const other = join(work, 'other');
    await generate('--out', other, '--namespace', 'platform-webhooks');
    const sans = await openssl('x509', '-in', join(other, 'tls.crt'), '-noout', '-ext', 'subjectAltName');
    t.match(sans, 'DNS:sts-guard.platform-webhooks.svc');
    t.notMatch(sans, 'sts-guard.sts-guard.svc');

    const rendered = await Rendered.of(other);
    t.ok(rendered.one<V1Namespace>('Namespace', 'platform-webhooks'));
    for (const object of rendered.objects) {
      if (object.metadata?.namespace !== undefined) {
        t.equal(object.metadata.namespace, 'platform-webhooks', `${object.kind}/${object.metadata.name}`);
      }
    }
    for (const w of rendered.webhooks()) {
      t.equal(w.clientConfig.service?.namespace, 'platform-webhooks', `${w.name} calls the moved Service`);
      const excluded = w.namespaceSelector?.matchExpressions?.find(
        (e) => e.key === 'kubernetes.io/metadata.name',
      );
      t.same(
        excluded?.values,
        ['kube-system', 'platform-webhooks'],
        `${w.name} still skips its own namespace`,
      );
    }
  },
);

t.test('--image installs your build instead of the placeholder image', async (t) => {
  const dir = join(work, 'image');
  await generate('--out', dir, '--image', 'registry.example.com:5000/platform/sts-guard:1.4.2');
  const pod = (await Rendered.of(dir)).one<V1Deployment>('Deployment').spec?.template.spec;
  t.equal(pod?.containers[0]?.image, 'registry.example.com:5000/platform/sts-guard:1.4.2');
});

t.test('bad arguments are refused with a message', async (t) => {
  const stderrOf = (...args: string[]) =>
    generate(...args).then(
      () => 'exited 0',
      (error: { stderr?: string }) => error.stderr ?? '',
    );
  t.match(
    await stderrOf('--out', join(work, 'bad'), '--namespace', 'Not_A_Namespace'),
    'not a valid namespace name',
  );
  t.match(await stderrOf('--frobnicate'), 'unknown argument: --frobnicate');
});
