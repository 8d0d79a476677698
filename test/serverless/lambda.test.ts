import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import type { AdmissionReview } from '../../src/admission/types.js';
import type { LambdaHandler } from '../../src/serverless/handler.js';
import { repoRoot } from '../support/repo.js';
import {
  isLiveLookup,
  reviews,
  sameAnswer,
  startApiServer,
  startHttpsReference,
  writeKubeconfig,
} from './reference.js';

const run = promisify(execFile);

// One cluster for the function, one for the reference server, with the same Services: the
// function's own requests show what a cold instance asks the API server.
const functionApi = await startApiServer();
const referenceApi = await startApiServer();
const kubeconfig = await writeKubeconfig(functionApi);
const env = {
  KUBECONFIG: kubeconfig.path,
  LOG_LEVEL: 'silent',
  // Generous: this test compares answers, and the first look-up also loads the Kubernetes client,
  // which on a busy test machine may take longer than production's 1.5 s budget.
  LOOKUP_TIMEOUT_MS: '8000',
  // Set on purpose: the Lambda handler must ignore it (a frozen instance cannot follow a watch).
  SERVICE_CACHE: 'on',
};
Object.assign(process.env, env);
const reference = await startHttpsReference(referenceApi, env);
t.teardown(async () => {
  await reference.close();
  await functionApi.close();
  await referenceApi.close();
  await kubeconfig.remove();
});

/**
 * What a Lambda Function URL delivers for an HTTP request (payload format 2.0, AWS Lambda
 * Developer Guide, "Invoking Lambda function URLs"), here for kube-apiserver's POST of a review.
 */
function functionUrlEvent(path: string, review: AdmissionReview, base64 = false) {
  const json = JSON.stringify(review);
  const domainPrefix = 'abcdefghijklmnopqrstuvwxyz012345';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: 'timeout=5s',
    queryStringParameters: { timeout: '5s' },
    headers: {
      accept: 'application/json, */*',
      'accept-encoding': 'gzip',
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(json)),
      host: `${domainPrefix}.lambda-url.eu-west-1.on.aws`,
      'user-agent': 'kube-apiserver-admission',
      'x-amzn-trace-id': 'Root=1-65f1a2b3-0123456789abcdef01234567',
      'x-forwarded-for': '203.0.113.10',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
    },
    requestContext: {
      accountId: 'anonymous',
      apiId: domainPrefix,
      domainName: `${domainPrefix}.lambda-url.eu-west-1.on.aws`,
      domainPrefix,
      http: {
        method: 'POST',
        path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.10',
        userAgent: 'kube-apiserver-admission',
      },
      requestId: '5e1c7f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a',
      routeKey: '$default',
      stage: '$default',
      time: '28/Nov/2026:12:00:00 +0000',
      timeEpoch: 1795867200000,
    },
    body: base64 ? Buffer.from(json).toString('base64') : json,
    isBase64Encoded: base64,
  };
}

const lambdaContext = {
  functionName: 'sts-guard',
  functionVersion: '$LATEST',
  awsRequestId: '5e1c7f0a-1b2c-4d3e-8f9a-0b1c2d3e4f5a',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 5000,
};

/** The assertions used below, as every tap subtest has them. */
interface Assertions {
  equal(found: unknown, wanted: unknown, message: string): boolean;
  not(found: unknown, notWanted: unknown, message: string): boolean;
  match(found: unknown, pattern: unknown, message: string): boolean;
  ok(found: unknown, message: string): boolean;
}

async function sameAnswersAsHttps(t: Assertions, handler: LambdaHandler) {
  for (const [behaviour, path, review] of reviews) {
    for (const base64 of [false, true]) {
      const started = Date.now();
      const expected = await reference.post(path, review);
      const answer = await handler(functionUrlEvent(path, review, base64), lambdaContext);
      const apart = Math.ceil((Date.now() - started) / 1000);
      const what = `${behaviour}${base64 ? ' (body base64-encoded by the Function URL)' : ''}`;
      t.equal(answer.statusCode, expected.statusCode, `${what}: status`);
      t.match(answer.headers['content-type'], 'application/json', `${what}: JSON`);
      t.not(answer.isBase64Encoded, true, `${what}: the body goes back as text`);
      sameAnswer(
        t,
        answer.body,
        expected.body,
        apart,
        `${what}: the same AdmissionReview as the HTTPS server`,
      );
    }
  }
  // Guard against comparing two equal failures.
  const [denied, mutated] = reviews;
  const deniedAnswer = JSON.parse(
    (await handler(functionUrlEvent(denied![1], denied![2]), lambdaContext)).body,
  ) as AdmissionReview;
  t.match(deniedAnswer.response, { allowed: false, status: { code: 403 } }, 'a denial');
  t.match(
    deniedAnswer.response?.status?.message,
    'names a Service with clusterIP 10.96.0.12',
    'after a look-up',
  );
  const mutatedAnswer = JSON.parse(
    (await handler(functionUrlEvent(mutated![1], mutated![2]), lambdaContext)).body,
  ) as AdmissionReview;
  t.equal(mutatedAnswer.response?.patchType, 'JSONPatch', 'a patch');
  for (const [behaviour, path, review] of reviews.slice(3)) {
    const answer = JSON.parse(
      (await handler(functionUrlEvent(path, review), lambdaContext)).body,
    ) as AdmissionReview;
    t.equal(answer.response?.uid, review.request?.uid, `${behaviour}: a decision, not an error`);
  }
}

t.test('the Lambda handler answers a Function URL event exactly as the HTTPS server does', async (t) => {
  const { handler } = (await import('../../src/serverless/lambda.js')) as { handler: LambdaHandler };
  await sameAnswersAsHttps(t, handler);
});

t.test('every look-up from the function is a live GET: no list, no watch, no cache', async (t) => {
  const { handler } = (await import('../../src/serverless/lambda.js')) as { handler: LambdaHandler };
  const before = functionApi.requests.length;
  // Every review twice, as one warm instance is invoked again and again.
  for (const _round of [1, 2]) {
    for (const [, path, review] of reviews) await handler(functionUrlEvent(path, review), lambdaContext);
  }
  const requests = functionApi.requests.slice(before);
  t.ok(requests.length > 0, 'the function asked the API server');
  t.ok(
    requests.every(isLiveLookup),
    `only live GETs and namespace LISTs: ${[...new Set(requests)].join(', ')}`,
  );
  const gets = requests.filter((r) => r.endsWith('/services/mongodb')).length;
  t.ok(gets >= 2, 'the same Service is fetched again for the next review');
  t.ok(
    requests.some((r) => r.endsWith('/statefulsets/mongodb-single')),
    'a scale reads its StatefulSet',
  );
  t.ok(
    requests.some((r) => r.endsWith('/namespaces/grade-submission/statefulsets')),
    'a Service deletion lists them',
  );
});

t.test('the esbuild bundle for Lambda gives the same answers', async (t) => {
  const outdir = await mkdtemp(join(tmpdir(), 'sts-guard-lambda-'));
  t.teardown(() => rm(outdir, { recursive: true, force: true }));
  const { stdout } = await run(process.execPath, [
    join(repoRoot, 'deploy/serverless/build-lambda.mjs'),
    '--outdir',
    outdir,
  ]);
  t.match(stdout, 'loaded by a cold instance before its first review', 'reports its size');
  t.match(
    stdout,
    /selfsigned: development certificates only/,
    'the development-certificate code is left out of init',
  );
  t.ok((await stat(join(outdir, 'index.mjs'))).size > 0);

  const { handler } = (await import(pathToFileURL(join(outdir, 'index.mjs')).href)) as {
    handler: LambdaHandler;
  };
  await sameAnswersAsHttps(t, handler);
});
