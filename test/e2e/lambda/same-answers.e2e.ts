/**
 * On the Lambda path: the same AdmissionReviews get byte-identical answers from the function
 * (through the Function URL front) and from the HTTPS server (`npm start`), against the same
 * cluster. The corpus is what kube-apiserver itself sent the function (the front's journal):
 * while this story drives the scenarios of the other stories in a namespace of its own (denied
 * and admitted creates, scales, a Service deletion and update), and whatever the stories before
 * it sent; then the README's examples, and bodies that are not reviews at all.
 */
import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { httpsRequest } from '../../support/https.js';
import { repoPath } from '../../support/repo.js';
import { freshNamespace, kubectl, scenario } from '../support/env.js';
import { readJournal } from '../support/function-url.js';
import { loadLambdaState } from '../support/lambda.js';

const state = loadLambdaState();
const ca = await readFile(state.stsGuard.caFile, 'utf8');

// The scenarios, as kubectl sends them; some are refused, which is the point.
const ns = 'lambda-corpus';
await freshNamespace(state, ns);
for (const args of [
  ['apply', '-n', ns, '-f', scenario('seed-clusterip-service')],
  ['delete', 'service', 'mongodb', '-n', ns],
  ['apply', '-n', ns, '-f', scenario('seed-without-replset')],
  ['apply', '-n', ns, '-f', scenario('standalone-without-replset')],
  ['scale', 'statefulset', 'mongodb-standalone', '-n', ns, '--replicas=3'],
  ['apply', '-n', ns, '-f', scenario('compliant-replica-set')],
  ['scale', 'statefulset', 'mongodb', '-n', ns, '--replicas=3'],
  ['delete', 'service', 'mongodb-headless', '-n', ns],
  [
    'patch',
    'service',
    'mongodb-headless',
    '-n',
    ns,
    '--type=merge',
    '-p',
    '{"spec":{"type":"ExternalName","externalName":"db.example.invalid","clusterIP":null,"clusterIPs":null,"publishNotReadyAddresses":null}}',
  ],
]) {
  await kubectl(state, args);
}

interface Item {
  what: string;
  path: string;
  body: string;
}

// Every review the function was sent, once; of the latency story's hundreds of dry-run creates
// of one shape, the first few.
const seen = new Set<string>();
const fromApiServer: Item[] = [];
let dryRuns = 0;
for (const served of readJournal(state.lambda.journal)) {
  const key = `${served.path}\n${served.body}`;
  if (seen.has(key) || !served.body.startsWith('{')) continue;
  seen.add(key);
  const request = (JSON.parse(served.body) as { request?: Record<string, unknown> }).request ?? {};
  if (request.dryRun === true && ++dryRuns > 6) continue;
  const kind = (request.kind as { kind?: string } | undefined)?.kind;
  const sub = request.subResource ? `/${request.subResource}` : '';
  fromApiServer.push({
    what: `${served.path} ${request.operation} ${kind}${sub} ${request.namespace}/${request.name}`,
    path: served.path,
    body: served.body,
  });
}

const examples: Item[] = [
  {
    what: 'examples/review-denied.json',
    path: '/validate',
    body: await readFile(repoPath('examples/review-denied.json'), 'utf8'),
  },
  {
    what: 'examples/review-replica-set.json',
    path: '/mutate',
    body: await readFile(repoPath('examples/review-replica-set.json'), 'utf8'),
  },
];
const notReviews: Item[] = [
  { what: 'a body that is not JSON', path: '/validate', body: '{"apiVersion":' },
  {
    what: 'an AdmissionReview without a request',
    path: '/mutate',
    body: '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}',
  },
  {
    what: 'an AdmissionReview of another version',
    path: '/validate',
    body: '{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}',
  },
  { what: 'a path that is not a webhook', path: '/nothing-here', body: '{}' },
];

async function both(item: Item) {
  const post = (base: string) =>
    httpsRequest(`${base}${item.path}?timeout=5s`, {
      body: item.body,
      ca,
      headers: { accept: 'application/json, */*' },
    });
  const [lambda, server] = await Promise.all([post(state.lambda.frontUrl), post(state.stsGuard.url)]);
  return { lambda, server };
}

/**
 * A mutation of a CREATE stamps the initiation window from the clock (INITIATE_UNTIL, in
 * seconds): two answers may differ only when they were made in different seconds, and are
 * then asked again; within one second they must be identical.
 */
async function compare(t: Test, item: Item) {
  for (let attempt = 1; ; attempt++) {
    const second = Math.floor(Date.now() / 1000);
    const { lambda, server } = await both(item);
    const sameSecond = Math.floor(Date.now() / 1000) === second;
    if (lambda.body === server.body || sameSecond || attempt === 5) {
      t.equal(lambda.statusCode, server.statusCode, `${item.what}: the same status (${server.statusCode})`);
      t.equal(
        lambda.headers['content-type'],
        server.headers['content-type'],
        `${item.what}: the same content type`,
      );
      t.equal(lambda.body, server.body, `${item.what}: byte-identical bodies (${server.body.length} bytes)`);
      return { lambda, server };
    }
  }
}

t.test('the corpus kube-apiserver sent holds every kind of review the stories made', async (t) => {
  const whats = fromApiServer.map((i) => i.what);
  t.ok(
    whats.some((w) => w.startsWith('/mutate CREATE StatefulSet')),
    'mutations of creates',
  );
  t.ok(
    whats.some((w) => w.startsWith('/validate CREATE StatefulSet')),
    'validations of creates',
  );
  t.ok(
    whats.some((w) => w.includes('Scale/scale')),
    'scales',
  );
  t.ok(
    whats.some((w) => w.startsWith('/validate DELETE Service')),
    'Service deletions',
  );
  t.ok(
    whats.some((w) => w.startsWith('/validate UPDATE Service')),
    'Service updates',
  );
});

t.test(`${fromApiServer.length} reviews kube-apiserver sent: byte-identical answers`, async (t) => {
  let denied = 0;
  for (const item of fromApiServer) {
    const { server } = await compare(t, item);
    if (server.body.includes('"allowed":false')) denied++;
  }
  t.ok(denied > 0, `denials among them (${denied}), so the comparison covers the messages`);
});

t.test("the README's examples: byte-identical answers", async (t) => {
  for (const item of examples) await compare(t, item);
});

t.test('bodies that are not reviews: the same errors', async (t) => {
  for (const item of notReviews) {
    const { server } = await compare(t, item);
    t.not(server.statusCode, 200, `${item.what}: refused`);
  }
});
