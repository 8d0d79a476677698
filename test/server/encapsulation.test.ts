import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildApp } from '../../src/server/app.js';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { admissionReview, defaultSettings, replicaSet } from '../support/fixtures.js';

/**
 * The admission routes replace Fastify's JSON parser (one JSON.parse; their own walk refuses
 * prototype-poisoning keys) and may demand a client certificate. Both must stay on those routes:
 * a JSON route added to the same app later keeps Fastify's defaults without its author doing
 * anything.
 */
const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-encap-')));
const app = await buildApp({
  settings: defaultSettings(),
  services: { lookup: async () => ({ outcome: 'not-found' }) },
  bodyLimitBytes: 1024 * 1024,
  logger: { level: 'silent' },
  // The client CA makes /validate and /mutate demand a client certificate; inject() presents none.
  https: { key: certificate.key, cert: certificate.cert, clientCa: certificate.cert },
});
app.post('/echo', async (request) => ({ body: request.body }));
t.teardown(() => app.close());

const poisoned = '{"apiVersion":"admission.k8s.io/v1","__proto__":{"polluted":true}}';

t.test("a JSON route beside the admission routes gets Fastify's own parser", async (t) => {
  const reply = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/json' },
    payload: poisoned,
  });
  t.equal(
    reply.statusCode,
    400,
    "secure-json-parse refuses a __proto__ key: Fastify's default, not sts-guard's parser",
  );
  t.match(reply.json(), { message: /not valid JSON/ });
  const plain = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
  t.same(plain.json(), { body: { a: 1 } });
});

t.test('…and no client-certificate check, which applies to the review routes only', async (t) => {
  const echo = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
  t.equal(echo.statusCode, 200);
  for (const url of ['/validate', '/mutate']) {
    const review = await app.inject({
      method: 'POST',
      url,
      payload: admissionReview({ object: replicaSet() }),
    });
    t.equal(review.statusCode, 401, `${url} without a client certificate`);
  }
});

t.test('the review routes keep their own parser: the same body is refused there by their walk', async (t) => {
  const bare = await buildApp({
    settings: defaultSettings(),
    services: { lookup: async () => ({ outcome: 'not-found' }) },
    bodyLimitBytes: 1024 * 1024,
    logger: { level: 'silent' },
  });
  t.teardown(() => bare.close());
  const reply = await bare.inject({
    method: 'POST',
    url: '/validate',
    headers: { 'content-type': 'application/json' },
    payload: poisoned,
  });
  t.equal(reply.statusCode, 400);
  t.match(reply.json(), { message: 'body contains a "__proto__" key, which no Kubernetes object has' });
});
