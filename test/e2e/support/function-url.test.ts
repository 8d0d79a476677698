/**
 * The Function URL front (a STAND-IN, support/function-url.ts) against AWS's documentation: the
 * request payload of the AWS Lambda Developer Guide's "Invoking Lambda function URLs" and the
 * response rules of its "Response payload format" and "Cookies" (and API Gateway's format 2.0,
 * which it follows). If the front drifts from them, the Lambda path's stories prove nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createDevelopmentCertificate } from '../../../src/server/tls.js';
import { httpsRequest } from '../../support/https.js';
import {
  type FunctionUrlEvent,
  functionUrlEvent,
  httpAnswerForResult,
  INVOCATION_PAYLOAD_LIMIT,
  readJournal,
  requestTime,
  startFunctionUrl,
} from './function-url.js';

const DOCUMENTED_TIME = new Date('2020-03-12T19:03:58.390Z');

t.test("the guide's example request becomes the guide's example event, field by field", async (t) => {
  const event = functionUrlEvent(
    {
      method: 'POST',
      url: '/my/path?parameter1=value1&parameter1=value2&parameter2=value',
      httpVersion: '1.1',
      rawHeaders: [
        'Host',
        '<url-id>.lambda-url.us-west-2.on.aws',
        'Header1',
        'value1',
        'Header2',
        'value1',
        'header2',
        'value2',
        'Cookie',
        'cookie1; cookie2',
        'User-Agent',
        'agent',
        'Content-Type',
        'text/plain',
      ],
      body: Buffer.from('Hello from client!'),
      sourceIp: '123.123.123.123',
    },
    { requestId: 'id', now: DOCUMENTED_TIME, accountId: '123456789012' },
  );
  t.match(event, {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/my/path',
    rawQueryString: 'parameter1=value1&parameter1=value2&parameter2=value',
    cookies: ['cookie1', 'cookie2'],
    queryStringParameters: { parameter1: 'value1,value2', parameter2: 'value' },
    requestContext: {
      accountId: '123456789012',
      apiId: '<url-id>',
      authentication: null,
      authorizer: null,
      domainName: '<url-id>.lambda-url.us-west-2.on.aws',
      domainPrefix: '<url-id>',
      http: {
        method: 'POST',
        path: '/my/path',
        protocol: 'HTTP/1.1',
        sourceIp: '123.123.123.123',
        userAgent: 'agent',
      },
      requestId: 'id',
      routeKey: '$default',
      stage: '$default',
      time: '12/Mar/2020:19:03:58 +0000',
      timeEpoch: 1584039838390,
    },
    body: 'Hello from client!',
    isBase64Encoded: false,
  } satisfies Partial<FunctionUrlEvent>);
  t.equal(event.headers.header1, 'value1', 'header names are lowercased');
  t.equal(event.headers.header2, 'value1,value2', 'a repeated header is joined with commas');
  t.notOk('cookie' in event.headers, 'cookies are in `cookies`, not in `headers`');
  t.notOk(
    'pathParameters' in event || 'stageVariables' in event,
    'fields Function URLs do not use are left out',
  );
});

t.test("kube-apiserver's review arrives as text; a binary body as base64", async (t) => {
  const review = Buffer.from('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}');
  const base = { method: 'POST', url: '/validate?timeout=5s', httpVersion: '1.1', sourceIp: '127.0.0.1' };
  const context = { requestId: 'r', now: DOCUMENTED_TIME, accountId: 'anonymous' };
  const json = functionUrlEvent(
    { ...base, rawHeaders: ['Host', 'h', 'Content-Type', 'application/json'], body: review },
    context,
  );
  t.equal(json.body, review.toString(), 'application/json is passed as text');
  t.equal(json.isBase64Encoded, false);
  t.same(json.queryStringParameters, { timeout: '5s' }, 'the query kube-apiserver adds is kept');
  const bytes = Buffer.from([0, 159, 146, 150]);
  const binary = functionUrlEvent(
    { ...base, rawHeaders: ['Host', 'h', 'Content-Type', 'application/octet-stream'], body: bytes },
    context,
  );
  t.equal(binary.body, bytes.toString('base64'));
  t.equal(binary.isBase64Encoded, true);
  const notUtf8 = functionUrlEvent(
    { ...base, rawHeaders: ['Host', 'h', 'Content-Type', 'application/json'], body: bytes },
    context,
  );
  t.equal(notUtf8.isBase64Encoded, true, 'a "JSON" body that is not UTF-8 is binary');
  const empty = functionUrlEvent(
    { ...base, url: '/healthz', rawHeaders: ['Host', 'h'], body: Buffer.alloc(0) },
    context,
  );
  t.notOk('body' in empty, 'no body, no field');
  t.notOk('queryStringParameters' in empty || 'cookies' in empty, 'no query, no cookies: no fields');
  t.equal(empty.isBase64Encoded, false);
});

t.test('requestContext.time is the access-log form in UTC', async (t) => {
  t.equal(requestTime(new Date('2021-09-07T22:50:22.677Z')), '07/Sep/2021:22:50:22 +0000');
  t.equal(requestTime(new Date('2026-01-01T00:00:00Z')), '01/Jan/2026:00:00:00 +0000');
});

t.test('a result without statusCode is inferred: 200, application/json, the JSON itself', async (t) => {
  const text = httpAnswerForResult(Buffer.from('"Hello, world!"'));
  t.equal(text.statusCode, 200);
  t.same(text.headers, [['content-type', 'application/json']]);
  t.equal(text.body.toString(), '"Hello, world!"', 'the guide: content-length 15, the quotes included');
  t.equal(text.body.length, 15);
  const object = httpAnswerForResult(Buffer.from('{"message":"Hello, world!"}'));
  t.equal(object.statusCode, 200);
  t.equal(object.body.toString(), '{"message":"Hello, world!"}');
  for (const other of ['42', '[1,2]', 'null', 'true']) {
    t.equal(httpAnswerForResult(Buffer.from(other)).statusCode, 200, `${other}: inferred`);
  }
});

t.test('a result with statusCode sets status, headers, cookies and body', async (t) => {
  const answer = httpAnswerForResult(
    Buffer.from(
      JSON.stringify({
        statusCode: 201,
        headers: { 'Content-Type': 'application/json', 'My-Custom-Header': 'Custom Value' },
        body: JSON.stringify({ message: 'Hello, world!' }),
        cookies: ['Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT', 'Cookie_2=Value2; Max-Age=78000'],
        isBase64Encoded: false,
      }),
    ),
  );
  t.equal(answer.statusCode, 201);
  t.same(answer.headers, [
    ['content-type', 'application/json'],
    ['my-custom-header', 'Custom Value'],
    ['set-cookie', 'Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT'],
    ['set-cookie', 'Cookie_2=Value2; Max-Age=78000'],
  ]);
  t.equal(answer.body.toString(), '{"message":"Hello, world!"}');
  const binary = httpAnswerForResult(
    Buffer.from(
      JSON.stringify({
        statusCode: 200,
        body: Buffer.from([1, 2, 255]).toString('base64'),
        isBase64Encoded: true,
      }),
    ),
  );
  t.same([...binary.body], [1, 2, 255], 'isBase64Encoded: the body is decoded');
  t.equal(httpAnswerForResult(Buffer.from('{"statusCode":204}')).body.length, 0, 'no body: empty');
});

t.test('a result that is not a response is a 502, as API Gateway answers for format 2.0', async (t) => {
  for (const result of ['Task timed out after 10.00 seconds', '{"statusCode":"soon"}', '{"statusCode":99}']) {
    const answer = httpAnswerForResult(Buffer.from(result));
    t.equal(answer.statusCode, 502, result);
    t.equal(answer.body.toString(), '{"message":"Internal server error"}');
  }
});

t.test('over HTTPS: one invocation at a time, the journal, the payload limit, function errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-front-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const certificate = await createDevelopmentCertificate(dir);
  const journal = join(dir, 'journal.jsonl');
  let running = 0;
  let overlapped = false;
  const events: FunctionUrlEvent[] = [];
  const front = await startFunctionUrl({
    cert: certificate.cert,
    key: certificate.key,
    journal,
    invoke: async (event) => {
      running++;
      overlapped ||= running > 1;
      const parsed = JSON.parse(event) as FunctionUrlEvent;
      events.push(parsed);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      if (parsed.rawPath === '/fails') return { status: 502, body: Buffer.from('{"errorType":"Error"}') };
      return {
        status: 200,
        body: Buffer.from(
          JSON.stringify({
            statusCode: 200,
            headers: { 'content-type': 'application/json' },
            body: parsed.body,
          }),
        ),
      };
    },
  });
  t.teardown(() => front.close());
  const ca = certificate.cert;
  const answers = await Promise.all(
    [1, 2, 3].map((n) => httpsRequest(`${front.url}/validate?timeout=5s`, { body: `{"n":${n}}`, ca })),
  );
  t.same(
    answers.map((a) => [a.statusCode, a.body]),
    [
      [200, '{"n":1}'],
      [200, '{"n":2}'],
      [200, '{"n":3}'],
    ],
  );
  t.notOk(overlapped, 'concurrent requests reach the one execution environment one after another');
  t.match(answers[0]?.headers['x-amzn-requestid'], /^[0-9a-f-]{36}$/, 'each answer names its request id');
  t.match(events[0]?.headers, {
    'x-forwarded-proto': 'https',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-port': String(front.port),
    'x-amzn-tls-version': /^TLSv1\.[23]$/,
  });
  t.match(events[0]?.headers['x-amzn-trace-id'], /^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);

  const failed = await httpsRequest(`${front.url}/fails`, { body: '{}', ca });
  t.equal(failed.statusCode, 502, 'a function error is a 502');
  t.equal(failed.body, '{"message":"Internal server error"}');

  const invokedBefore = events.length;
  const tooLarge = await httpsRequest(`${front.url}/validate`, {
    body: 'x'.repeat(INVOCATION_PAYLOAD_LIMIT + 1),
    ca,
  });
  t.equal(tooLarge.statusCode, 413, 'a request over the 6 MB invocation payload limit is refused');
  t.equal(events.length, invokedBefore, 'without invoking the function');

  const lines = readJournal(journal);
  t.same(
    lines.map((l) => [l.path, l.statusCode]).sort(),
    [
      ['/validate', 200],
      ['/validate', 200],
      ['/validate', 200],
      ['/fails', 502],
      ['/validate', 413],
    ].sort(),
    'the journal has every request, without its query',
  );
  t.ok(lines.every((l) => l.durationMs >= 0 && l.receivedAt > 0));
  t.equal((await readFile(journal, 'utf8')).split('\n').filter(Boolean).length, 5);
});
