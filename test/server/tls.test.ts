import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect, createServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { generate } from 'selfsigned';
import t from 'tap';
import { createDevelopmentCertificate, TLS_CIPHERS } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, replicaSet, service } from '../support/fixtures.js';
import { httpsCall } from '../support/https.js';
import { webhookAgainst } from '../support/webhook.js';

const api = await new LocalApiServer().start();
api.put(service('mongodb-headless'));
const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-tls-')));
t.teardown(() => api.close());

async function listening(https: { key: string; cert: string; clientCa?: string }) {
  const webhook = await webhookAgainst(api.kubeConfig(), { https });
  const origin = await webhook.app.listen({ port: 0, host: '127.0.0.1' });
  return { app: webhook.app as FastifyInstance, port: Number(new URL(origin).port), close: webhook.close };
}

type Handshake = { ok: true; protocol: string | null; cipher: string } | { ok: false; code: string };

/** A bare TLS handshake with `options`: what was negotiated, or the error code. */
function handshake(port: number, ca: string, options: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options }, () => {
      resolve({ ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ ok: false, code: error.code ?? error.message }),
    );
  });
}

t.test('TLS 1.2 and TLS 1.3 clients are served; a TLS 1.1 client is refused by the server', async (t) => {
  const server = await listening({ key: certificate.key, cert: certificate.cert });
  t.teardown(server.close);
  const tls13 = await handshake(server.port, certificate.cert, { minVersion: 'TLSv1.3' });
  t.match(tls13, { ok: true, protocol: 'TLSv1.3' });
  const tls12 = await handshake(server.port, certificate.cert, { maxVersion: 'TLSv1.2' });
  t.match(tls12, { ok: true, protocol: 'TLSv1.2' });
  t.ok(tls12.ok && TLS_CIPHERS.split(':').includes(tls12.cipher), 'TLS 1.2 negotiates a listed cipher');
  // The client offers only TLS 1.1 (allowed at security level 0); the alert comes from the server.
  const tls11 = await handshake(server.port, certificate.cert, {
    minVersion: 'TLSv1.1',
    maxVersion: 'TLSv1.1',
    ciphers: 'DEFAULT@SECLEVEL=0',
  });
  t.same(tls11, { ok: false, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
});

t.test('a TLS 1.2 client offering only CBC or SHA-1 suites is refused', async (t) => {
  const weak = ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-SHA256'];
  // Control: Node's default cipher list (what sts-guard used before) accepts these.
  const lenient = createServer({ key: certificate.key, cert: certificate.cert, minVersion: 'TLSv1.2' }, (s) =>
    s.end(),
  ).listen(0, '127.0.0.1');
  await new Promise((resolve) => lenient.once('listening', resolve));
  t.teardown(() => lenient.close());
  const lenientPort = (lenient.address() as { port: number }).port;

  const server = await listening({ key: certificate.key, cert: certificate.cert });
  t.teardown(server.close);
  for (const cipher of weak) {
    t.match(
      await handshake(lenientPort, certificate.cert, { maxVersion: 'TLSv1.2', ciphers: cipher }),
      {
        ok: true,
      },
      `Node's defaults would accept ${cipher}`,
    );
    // OpenSSL names the alert ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE (Node 20) or
    // ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE (Node 24): the same handshake_failure alert.
    t.match(
      await handshake(server.port, certificate.cert, { maxVersion: 'TLSv1.2', ciphers: cipher }),
      { ok: false, code: /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/ },
      `sts-guard refuses ${cipher}`,
    );
  }
});

t.test('an RSA serving certificate (cert-manager default) works with the TLS 1.2 list', async (t) => {
  const rsa = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
  });
  const server = await listening({ key: rsa.private, cert: rsa.cert });
  t.teardown(server.close);
  const tls12 = await handshake(server.port, rsa.cert, { maxVersion: 'TLSv1.2' });
  t.match(tls12, { ok: true, protocol: 'TLSv1.2', cipher: /^ECDHE-RSA-(AES\d+-GCM|CHACHA20)/ });
});

t.test(
  'with a client CA, reviews need a client certificate it signed; probes and metrics do not',
  async (t) => {
    const ca = await generate([{ name: 'commonName', value: 'kube-apiserver webhook client CA' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    });
    const clientExtensions = [
      { name: 'basicConstraints' as const, cA: false },
      { name: 'keyUsage' as const, digitalSignature: true },
      { name: 'extKeyUsage' as const, clientAuth: true },
    ];
    const apiServerClient = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: clientExtensions,
      ca: { key: ca.private, cert: ca.cert },
    });
    const stranger = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: clientExtensions,
    });

    const server = await listening({ key: certificate.key, cert: certificate.cert, clientCa: ca.cert });
    t.teardown(server.close);
    const review = admissionReview({ object: replicaSet() });
    const body = JSON.stringify(review);

    const anonymous = await httpsCall(server.port, '/validate', { ca: certificate.cert, body });
    t.equal(anonymous.statusCode, 401, 'no client certificate: refused');
    t.match(JSON.parse(anonymous.body), {
      statusCode: 401,
      message: /client certificate signed by the configured client CA/,
    });

    const foreign = await httpsCall(server.port, '/mutate', {
      ca: certificate.cert,
      body,
      key: stranger.private,
      cert: stranger.cert,
    });
    t.equal(foreign.statusCode, 401, 'a certificate from another CA: refused');

    const trusted = await httpsCall(server.port, '/validate', {
      ca: certificate.cert,
      body,
      key: apiServerClient.private,
      cert: apiServerClient.cert,
    });
    t.equal(trusted.statusCode, 200, 'a certificate the client CA signed: served');
    t.same(JSON.parse(trusted.body).response, { uid: review.request.uid, allowed: true });

    for (const path of ['/healthz', '/readyz', '/metrics']) {
      t.equal(
        (await httpsCall(server.port, path, { ca: certificate.cert })).statusCode,
        200,
        `${path} answers kubelet and Prometheus, which present no client certificate`,
      );
    }
  },
);
