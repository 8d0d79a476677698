import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { scale, scaleReview, serviceDeletion, serviceUpdate } from '../support/reviews.js';
import { webhookAgainst } from '../support/webhook.js';

/**
 * Hostile input: whatever arrives, the answer is a 4xx JSON error or a well-formed AdmissionReview
 * that echoes request.uid; never a 5xx, a crash or a hang.
 */

const BODY_LIMIT = 1024 * 1024;
const INJECTED_RUNS = 10_500;

const api = await new LocalApiServer().start();
api.put(service('mongodb-headless'));
api.put(service('mongodb', 'grade-submission', '10.96.0.12'));
api.putStatefulSet(replicaSet());
const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-fuzz-')));
const webhook = await webhookAgainst(api.kubeConfig(), {
  bodyLimitBytes: BODY_LIMIT,
  https: { key: certificate.key, cert: certificate.cert },
});
const app: FastifyInstance = webhook.app;
const origin = await app.listen({ port: 0, host: '127.0.0.1' });
t.teardown(async () => {
  await webhook.close();
  await api.close();
});

/** One malformed request: where it goes, what it carries, and the review it was built from, if any. */
interface Attack {
  url: '/validate' | '/mutate';
  payload: string;
  contentType?: string | undefined;
}

let sent = 0;
/** Answers by HTTP status, to show the generators reach the policy and not only the schema. */
const statuses = new Map<number, number>();

/** Why an answer breaks the contract, or undefined when it keeps it. */
function contractBreach(attack: Attack, statusCode: number, body: string): string | undefined {
  statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(body);
  } catch {
    return `HTTP ${statusCode} with a body that is not JSON: ${body.slice(0, 200)}`;
  }
  if (statusCode >= 400 && statusCode < 500) {
    if (answer.statusCode !== statusCode || typeof answer.message !== 'string') {
      return `HTTP ${statusCode} without {statusCode, message}: ${body.slice(0, 200)}`;
    }
    return undefined;
  }
  if (statusCode !== 200) return `HTTP ${statusCode}: ${body.slice(0, 300)}`;
  const response = answer.response as Record<string, unknown> | undefined;
  if (answer.apiVersion !== 'admission.k8s.io/v1' || answer.kind !== 'AdmissionReview' || !response) {
    return `HTTP 200 that is not an AdmissionReview: ${body.slice(0, 200)}`;
  }
  const sentUid = (JSON.parse(attack.payload) as { request: { uid: unknown } }).request.uid;
  if (response.uid !== sentUid)
    return `response.uid ${String(response.uid)} does not echo ${String(sentUid)}`;
  if (typeof response.allowed !== 'boolean') return 'response.allowed is not a boolean';
  if (response.patch !== undefined) {
    const patch = JSON.parse(Buffer.from(String(response.patch), 'base64').toString('utf8'));
    if (!Array.isArray(patch) || response.patchType !== 'JSONPatch')
      return 'patch is not a base64 JSON Patch';
  }
  return undefined;
}

async function inject(attack: Attack): Promise<string | undefined> {
  sent++;
  const answer = await app.inject({
    method: 'POST',
    url: attack.url,
    payload: attack.payload,
    headers: attack.contentType === undefined ? {} : { 'content-type': attack.contentType },
  });
  return contractBreach(attack, answer.statusCode, answer.body);
}

async function overHttps(attack: Attack): Promise<string | undefined> {
  sent++;
  const answer = await httpsRequest(`${origin}${attack.url}`, {
    body: attack.payload,
    ca: certificate.cert,
    headers: attack.contentType === undefined ? {} : { 'content-type': attack.contentType },
  });
  return contractBreach(attack, answer.statusCode, answer.body);
}

// Well-formed reviews of every kind the webhook handles, as starting points for damage.
const wellFormed = () => [
  admissionReview({ object: replicaSet() }),
  admissionReview({ object: statefulSet({ replicas: 3, serviceName: 'mongodb' }) }),
  admissionReview({ operation: 'UPDATE', object: statefulSet({ replicas: 3 }), oldObject: statefulSet() }),
  admissionReview({ operation: 'DELETE', oldObject: replicaSet() }),
  scaleReview('mongodb', 3),
  scaleReview('mongodb', 0),
  serviceDeletion(service('mongodb-headless')),
  serviceUpdate(service('mongodb-headless'), service('mongodb-headless', 'grade-submission', '10.96.0.9')),
];

const json = fc.jsonValue({ maxDepth: 3 });
const url = fc.constantFrom<Attack['url']>('/validate', '/mutate');

/** Every path (as keys) to a value inside `value`, the root included. */
function pathsOf(value: unknown, prefix: string[] = []): string[][] {
  const paths = [prefix];
  if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) paths.push(...pathsOf(child, [...prefix, key]));
  }
  return paths;
}

/** Replaces (or deletes) the value at `path`; the root itself cannot be deleted, only replaced. */
function damage(document: unknown, path: string[], replacement: unknown, remove: boolean): unknown {
  if (path.length === 0) return replacement;
  const parent = path
    .slice(0, -1)
    .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], document);
  const key = path.at(-1)!;
  if (remove) {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete (parent as Record<string, unknown>)[key];
  } else {
    (parent as Record<string, unknown>)[key] = replacement;
  }
  return document;
}

/** Wrong types everywhere: a well-formed review with one to four values replaced or removed. */
const wrongTypes = fc
  .tuple(
    url,
    fc.nat(wellFormed().length - 1),
    fc.array(fc.tuple(fc.nat(), fc.boolean(), json), { minLength: 1, maxLength: 4 }),
  )
  .map(([route, index, damages]): Attack => {
    let document: unknown = structuredClone(wellFormed()[index]);
    for (const [at, remove, replacement] of damages) {
      const paths = pathsOf(document);
      document = damage(document, paths[at % paths.length]!, replacement, remove);
    }
    return { url: route, payload: JSON.stringify(document) ?? 'null', contentType: 'application/json' };
  });

/** Truncated JSON: a well-formed review cut anywhere. */
const truncated = fc
  .tuple(url, fc.nat(wellFormed().length - 1), fc.double({ min: 0, max: 1, noNaN: true }))
  .map(([route, index, fraction]): Attack => {
    const whole = JSON.stringify(wellFormed()[index]);
    return {
      url: route,
      payload: whole.slice(0, Math.floor(whole.length * fraction)),
      contentType: 'application/json',
    };
  });

/** Any JSON at all. */
const anyJson = fc.tuple(url, json).map(
  ([route, value]): Attack => ({
    url: route,
    payload: JSON.stringify(value),
    contentType: 'application/json',
  }),
);

/** Reviews assembled from wrong parts: missing request/uid/object, oldObject only, wrong kinds. */
const assembled = fc
  .tuple(
    url,
    fc.record(
      {
        apiVersion: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1', 'v1', 42),
        kind: fc.constantFrom('AdmissionReview', 'Scale', null),
        request: fc.record(
          {
            uid: fc.oneof(fc.uuid(), fc.constant(''), fc.integer(), fc.constant('u'.repeat(300))),
            kind: fc.constantFrom(
              { group: 'apps', version: 'v1', kind: 'StatefulSet' },
              { group: 'autoscaling', version: 'v1', kind: 'Scale' },
              { group: '', version: 'v1', kind: 'Service' },
              { group: '', version: 'v1', kind: 'ConfigMap' },
              { kind: 'StatefulSet' },
              'StatefulSet',
            ),
            resource: fc.constantFrom(
              { group: 'apps', version: 'v1', resource: 'statefulsets' },
              { group: '', version: 'v1', resource: 'services' },
              { group: '', version: 'v1', resource: 'configmaps' },
              { group: 'apps', resource: 'statefulsets' },
              null,
            ),
            subResource: fc.constantFrom('scale', 'status', '', 7),
            name: fc.constantFrom('mongodb', 'mongodb-headless', '', null),
            namespace: fc.constantFrom('grade-submission', 'other', '', 3),
            operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'PATCH', 1),
            object: fc.constantFrom(
              replicaSet(),
              scale('mongodb', 3),
              service('mongodb-headless'),
              null,
              [],
              'StatefulSet',
              { spec: { replicas: '3' } },
              { metadata: { name: 7 }, spec: { replicas: -1, template: 'x' } },
            ),
            oldObject: fc.constantFrom(
              replicaSet(),
              scale('mongodb', 1),
              service('mongodb-headless'),
              null,
              {},
            ),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    ),
  )
  .map(
    ([route, document]): Attack => ({
      url: route,
      payload: JSON.stringify(document),
      contentType: 'application/json',
    }),
  );

/** Bodies that are not JSON as declared: other content types, none, bytes that are not UTF-8. */
const wrongContent = fc
  .tuple(
    url,
    fc.constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/yaml',
      'application/json; charset=utf-16',
      'application/json-patch+json',
      undefined,
    ),
    fc.oneof(
      fc.constant(JSON.stringify(admissionReview({ object: replicaSet() }))),
      fc.string(),
      fc.constant('\ufeff{}'),
      fc.constant('apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n'),
    ),
  )
  .map(([route, contentType, payload]): Attack => ({ url: route, payload, contentType }));

const attacks = fc.oneof(
  { arbitrary: wrongTypes, weight: 5 },
  { arbitrary: assembled, weight: 3 },
  { arbitrary: truncated, weight: 2 },
  { arbitrary: anyJson, weight: 1 },
  { arbitrary: wrongContent, weight: 1 },
);

/** Hand-made: nesting far deeper than any object, huge strings, bodies over the limit. */
function handMade(): Attack[] {
  const depth = 100_000;
  const deepArrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const deepObjects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const review = JSON.stringify(admissionReview({ object: replicaSet() }));
  const update = JSON.stringify(
    admissionReview({
      operation: 'UPDATE',
      object: statefulSet({ replicas: 3 }),
      oldObject: statefulSet({ replicas: 3 }),
    }),
  );
  const scaling = JSON.stringify(scaleReview('mongodb', 3));
  const deletion = JSON.stringify(serviceDeletion(service('mongodb-headless')));
  const huge = 'x'.repeat(BODY_LIMIT - 64 * 1024);
  const attack = (payload: string): Attack[] => [
    { url: '/validate', payload, contentType: 'application/json' },
    { url: '/mutate', payload, contentType: 'application/json' },
  ];
  return [
    ...attack(deepArrays),
    ...attack(deepObjects),
    ...attack(review.replace('"userInfo":{', `"userInfo":{"deep":${deepArrays},`)),
    ...attack(update.replaceAll('"selector":{', `"selector":{"deep":${deepArrays},`)),
    ...attack(update.replaceAll('"selector":{', `"selector":{"deep":${deepObjects},`)),
    ...attack(scaling.replace('"spec":{', `"spec":{"deep":${deepArrays},`)),
    ...attack(deletion.replace('"spec":{', `"spec":{"deep":${deepObjects},`)),
    ...attack(review.replace('"name":"mongodb"', `"name":"${huge}"`)),
    ...attack(review.replace('"image":"mongo:4.4"', `"image":"${huge}"`)),
    ...attack(review.replace(/"uid":"[^"]+"/, `"uid":"${huge}"`)),
    ...attack(review.replace('"--replSet"', `"${huge}"`)),
    ...attack(`{"pad":"${'y'.repeat(BODY_LIMIT)}"}`),
    ...attack(review.replace('"userInfo":{', '"userInfo":{"__proto__":{"polluted":true},')),
    ...attack(review.replace('"replicas":3', '"replicas":1e400')),
    ...attack(review.replace('"replicas":3', '"replicas":9007199254740993')),
    ...attack(review.replace('"object":{', '"object":{"constructor":{"prototype":{"polluted":true}},')),
    ...attack(''),
    ...attack('null'),
    ...attack('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"oldObject":{}}}'),
  ];
}

t.test(
  `${INJECTED_RUNS} generated malformed requests through inject(): each a 4xx JSON error or an AdmissionReview`,
  async (t) => {
    const before = sent;
    await fc.assert(
      fc.asyncProperty(attacks, async (attack) => {
        const breach = await inject(attack);
        if (breach) throw new Error(breach);
      }),
      { numRuns: INJECTED_RUNS },
    );
    t.ok(sent - before >= INJECTED_RUNS, `${sent - before} requests sent`);
    t.comment(`answers by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
    t.ok((statuses.get(200) ?? 0) > 1000, 'many damaged reviews are still well-formed and reach the policy');
    t.ok((statuses.get(400) ?? 0) > 1000, 'many are refused as malformed');
  },
);

t.test('hand-made hostile bodies through inject(): deep nesting, huge strings, over the limit', async (t) => {
  for (const attack of handMade()) {
    const label = `${attack.url} ${attack.payload.slice(0, 60)}… (${attack.payload.length} bytes)`;
    t.equal(await inject(attack), undefined, label);
  }
  const tooLarge = await app.inject({
    method: 'POST',
    url: '/validate',
    payload: `{"pad":"${'y'.repeat(BODY_LIMIT)}"}`,
    headers: { 'content-type': 'application/json' },
  });
  t.equal(tooLarge.statusCode, 413, 'a body over the limit is refused with 413');
  t.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/validate',
        payload: `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
        headers: { 'content-type': 'application/json' },
      })
    ).statusCode,
    400,
    '100,000 nested arrays are a 400',
  );
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');
});

t.test('generated and hand-made hostile requests over the real HTTPS listener', async (t) => {
  const before = sent;
  await fc.assert(
    fc.asyncProperty(attacks, async (attack) => {
      const breach = await overHttps(attack);
      if (breach) throw new Error(breach);
    }),
    { numRuns: 300 },
  );
  for (const attack of handMade()) {
    t.equal(await overHttps(attack), undefined, `${attack.url} ${attack.payload.slice(0, 60)}…`);
  }
  t.ok(sent - before >= 300, `${sent - before} requests over HTTPS`);
});

/** Writes raw bytes over TLS and returns whatever comes back before the server closes (or 2 s pass). */
function rawExchange(bytes: string, endAfterWrite: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(origin);
    const socket = connect(
      { host: '127.0.0.1', port: Number(port), ca: certificate.cert, servername: 'localhost' },
      () => {
        socket.write(bytes);
        if (endAfterWrite) socket.end();
      },
    );
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    // The server resetting the connection is a closed connection too (Node 24 reports ECONNRESET
    // where Node 20 saw an orderly close): whatever arrived before it is the answer.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET') reject(error);
    });
    socket.on('close', () => resolve(received));
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}

t.test('broken HTTP over TLS gets a JSON 4xx or a closed connection, never a crash', async (t) => {
  const garbage = await rawExchange('NOT HTTP AT ALL\r\n\r\n', false);
  t.match(garbage, /^HTTP\/1\.1 400 /, 'a request line that is not HTTP is a 400');
  t.match(garbage, /"statusCode":400/, '…with a JSON body');

  const hugeHeader = await rawExchange(
    `POST /validate HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(64 * 1024)}\r\n\r\n`,
    false,
  );
  t.match(hugeHeader, /^HTTP\/1\.1 431 /, 'oversized headers are a 431');

  const cutShort = await rawExchange(
    'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"apiVersion":',
    true,
  );
  t.notMatch(cutShort, /^HTTP\/1\.1 5/, 'a body shorter than its Content-Length is never a 5xx');

  const lying = await rawExchange(
    'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{"apiVersion":"admission.k8s.io/v1"}',
    false,
  );
  t.match(lying, /^HTTP\/1\.1 400 /, 'a Content-Length that cuts the JSON short is a 400');
});

t.test('after all of it the server is up: /healthz answers and a real review is decided', async (t) => {
  const health = await httpsRequest(`${origin}/healthz`, { method: 'GET', ca: certificate.cert });
  t.equal(health.statusCode, 200);
  const review = admissionReview({ object: replicaSet() });
  const answer = await httpsRequest(`${origin}/validate`, {
    body: JSON.stringify(review),
    ca: certificate.cert,
  });
  t.match((answer.json() as { response: unknown }).response, { uid: review.request.uid, allowed: true });
  t.ok(sent >= 10_000, `${sent} hostile requests in all`);
});
