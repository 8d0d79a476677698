// STAND-IN for an AWS Lambda Function URL: the only imitation on the e2e suite's Lambda path.
/**
 * A Function URL is AWS's HTTPS endpoint in front of a function: it turns an HTTPS request into a
 * payload-format-2.0 event, invokes the function, and turns the result back into an HTTP response.
 * It cannot run off AWS, so this small HTTPS server does the same for the tests, field by field as
 * the AWS Lambda Developer Guide ("Invoking Lambda function URLs": request and response payloads,
 * cookies) and the API Gateway guide it refers to ("payload format version 2.0", "Lambda function
 * response for format 2.0") describe them. Behind it, the function runs for real: the Lambda
 * Runtime Interface Emulator and the runtime interface client (support/lambda.ts).
 *
 * What it does not imitate: auth type AWS_IAM (kube-apiserver cannot sign with SigV4, so the URL
 * is auth type NONE, docs/deploy.md), CORS, response streaming, and Lambda's scaling: one
 * execution environment serves one request at a time, so the front queues them as the only
 * environment Lambda would have had (Lambda would start another, with its own cold start).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** Lambda's synchronous invocation payload limit (request and response): 6 MB. */
export const INVOCATION_PAYLOAD_LIMIT = 6 * 1024 * 1024;

export interface FunctionUrlEvent {
  version: '2.0';
  routeKey: '$default';
  rawPath: string;
  rawQueryString: string;
  cookies?: string[];
  headers: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  requestContext: {
    accountId: string;
    apiId: string;
    authentication: null;
    authorizer: null;
    domainName: string;
    domainPrefix: string;
    http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
    requestId: string;
    routeKey: '$default';
    stage: '$default';
    time: string;
    timeEpoch: number;
  };
  body?: string;
  isBase64Encoded: boolean;
}

/** What the front knows of one HTTPS request. */
export interface HttpsRequestFacts {
  method: string;
  /** The request target: path and query, as on the request line. */
  url: string;
  httpVersion: string;
  /** Node's rawHeaders: name, value, name, value... in the order received. */
  rawHeaders: string[];
  body: Buffer;
  sourceIp: string;
}

export interface EventContext {
  requestId: string;
  now: Date;
  /** "anonymous" for a URL of auth type NONE, as Lambda reports it. */
  accountId: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** requestContext.time: "12/Mar/2020:19:03:58 +0000" (UTC). */
export function requestTime(now: Date): string {
  return `${two(now.getUTCDate())}/${MONTHS[now.getUTCMonth()]}/${now.getUTCFullYear()}:${two(now.getUTCHours())}:${two(now.getUTCMinutes())}:${two(now.getUTCSeconds())} +0000`;
}

/**
 * Whether Lambda passes a body as text. The guide says only that a binary body is base64-encoded;
 * here a body is text when its content type is textual (text/*, JSON, XML, form data, JavaScript),
 * which covers kube-apiserver's `application/json`, and binary otherwise or when it is not UTF-8.
 */
export function isTextBody(contentType: string | undefined, body: Buffer): boolean {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const textual =
    type.startsWith('text/') ||
    /^application\/([\w.-]+\+)?(json|xml)$/.test(type) ||
    type === 'application/x-www-form-urlencoded' ||
    type === 'application/javascript';
  if (!textual) return false;
  return Buffer.from(body.toString('utf8'), 'utf8').equals(body);
}

/**
 * The payload-2.0 event for one HTTPS request. Header names are lowercased and repeated headers
 * joined with commas; cookies leave `headers` for `cookies`, one entry per cookie; repeated query
 * parameters are joined with commas; fields Function URLs do not use (pathParameters,
 * stageVariables) are left out, as the guide allows.
 */
export function functionUrlEvent(request: HttpsRequestFacts, context: EventContext): FunctionUrlEvent {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = (request.rawHeaders[i] as string).toLowerCase();
    const value = request.rawHeaders[i + 1] as string;
    if (name === 'cookie') {
      cookies.push(
        ...value
          .split(';')
          .map((c) => c.trim())
          .filter(Boolean),
      );
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  const queryAt = request.url.indexOf('?');
  const rawPath = queryAt >= 0 ? request.url.slice(0, queryAt) : request.url;
  const rawQueryString = queryAt >= 0 ? request.url.slice(queryAt + 1) : '';
  const query: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    query[key] = key in query ? `${query[key]},${value}` : value;
  }
  const domainName = headers.host ?? '';
  const text = isTextBody(headers['content-type'], request.body);
  const event: FunctionUrlEvent = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(rawQueryString ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: context.accountId,
      apiId: domainName.split('.')[0] ?? '',
      authentication: null,
      authorizer: null,
      domainName,
      domainPrefix: domainName.split('.')[0] ?? '',
      http: {
        method: request.method,
        path: rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: context.requestId,
      routeKey: '$default',
      stage: '$default',
      time: requestTime(context.now),
      timeEpoch: context.now.getTime(),
    },
    ...(request.body.length > 0
      ? { body: text ? request.body.toString('utf8') : request.body.toString('base64') }
      : {}),
    isBase64Encoded: request.body.length > 0 && !text,
  };
  return event;
}

export interface HttpAnswer {
  statusCode: number;
  /** Header lines in order; set-cookie may repeat. */
  headers: Array<[string, string]>;
  body: Buffer;
}

/**
 * A function error, or a result that is not a response: the Function URL guide documents no
 * error body of its own, so this is what API Gateway documents for the same payload format
 * ("Handling Lambda errors with an API Gateway API"): 502, {"message": "Internal server error"}.
 */
const internalServerError = (): HttpAnswer => ({
  statusCode: 502,
  headers: [['content-type', 'application/json']],
  body: Buffer.from('{"message":"Internal server error"}'),
});

/**
 * The HTTP response for a function's result (its JSON, as the runtime returned it). An object
 * with `statusCode` is the custom format: status, headers, `cookies` (each a set-cookie line),
 * and the body, base64-decoded when `isBase64Encoded`. Any other valid JSON (an object without
 * `statusCode`, a string, a number, an array, null) is inferred: 200, content-type
 * application/json, and the function's JSON itself as the body (a string result reaches the
 * client with its quotes). A result that is not JSON is a function error: 502.
 */
export function httpAnswerForResult(result: Buffer): HttpAnswer {
  let value: unknown;
  try {
    value = JSON.parse(result.toString('utf8'));
  } catch {
    return internalServerError();
  }
  const custom =
    typeof value === 'object' && value !== null && !Array.isArray(value) && 'statusCode' in value;
  if (!custom) {
    return { statusCode: 200, headers: [['content-type', 'application/json']], body: result };
  }
  const response = value as {
    statusCode: unknown;
    headers?: Record<string, unknown>;
    cookies?: unknown[];
    body?: unknown;
    isBase64Encoded?: unknown;
  };
  const statusCode = Number(response.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return internalServerError();
  const headers: Array<[string, string]> = Object.entries(response.headers ?? {}).map(([name, v]) => [
    name.toLowerCase(),
    String(v),
  ]);
  for (const cookie of response.cookies ?? []) headers.push(['set-cookie', String(cookie)]);
  const body =
    typeof response.body === 'string'
      ? Buffer.from(response.body, response.isBase64Encoded === true ? 'base64' : 'utf8')
      : Buffer.alloc(0);
  return { statusCode, headers, body };
}

/** Invokes the function with an event (JSON) and returns the emulator's HTTP status and body. */
export type Invoke = (event: string, requestId: string) => Promise<{ status: number; body: Buffer }>;

/**
 * Invokes through the Lambda Runtime Interface Emulator's invoke endpoint, as `aws lambda invoke`
 * does against AWS: the emulator hands the event to the runtime interface client polling its
 * Runtime API and answers with the function's result (200), or 502 when the function failed.
 */
export function emulatorInvoke(emulatorUrl: string): Invoke {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  const once = (event: string, requestId: string) =>
    new Promise<{ status: number; body: Buffer; reused: boolean }>((resolve, reject) => {
      const req = httpRequest(
        `${emulatorUrl}/2015-03-31/functions/function/invocations`,
        { method: 'POST', agent, headers: { 'x-amzn-requestid': requestId } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), reused: req.reusedSocket }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', (error) => reject(Object.assign(error, { reused: req.reusedSocket })));
      req.end(event);
    });
  return async (event, requestId) => {
    try {
      return await once(event, requestId);
    } catch (error) {
      // A kept-alive connection to an emulator that has since been restarted: send it again, once.
      if (!(error as { reused?: boolean }).reused) throw error;
      return once(event, requestId);
    }
  };
}

/** One request, as the front served it: a line of its journal. */
export interface Invocation {
  requestId: string;
  /** The request path, without the query kube-apiserver adds (?timeout=5s). */
  path: string;
  /** When the request's body had arrived (ms since the epoch). */
  receivedAt: number;
  /** From the request's last byte to the response: the function's time plus the front's own. */
  durationMs: number;
  statusCode: number;
  /** The request body as received (the AdmissionReview kube-apiserver sent). */
  body: string;
}

export interface FunctionUrl {
  url: string;
  port: number;
  close(): Promise<void>;
}

const traceId = (now: Date) =>
  `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;

/**
 * Serves the Function URL over HTTPS on 127.0.0.1 with the given certificate (the API server
 * trusts it through the webhooks' caBundle, as it trusts a public CA for a real Function URL).
 */
export async function startFunctionUrl(options: {
  cert: string;
  key: string;
  invoke: Invoke;
  /** Appends one JSON line (an Invocation) per request served. */
  journal: string;
  port?: number;
}): Promise<FunctionUrl> {
  let queue: Promise<unknown> = Promise.resolve();

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= INVOCATION_PAYLOAD_LIMIT) chunks.push(chunk);
    }
    const now = new Date();
    const requestId = randomUUID();
    const socket = req.socket as TLSSocket;
    const body = Buffer.concat(chunks);
    // Headers a Function URL adds for the function (x-forwarded-*, the TLS it terminated, a trace).
    const rawHeaders = [
      ...req.rawHeaders,
      'x-amzn-tls-cipher-suite',
      socket.getCipher?.()?.standardName ?? '',
      'x-amzn-tls-version',
      socket.getProtocol?.() ?? '',
      'x-amzn-trace-id',
      traceId(now),
      'x-forwarded-proto',
      'https',
      'x-forwarded-port',
      String(socket.localPort ?? ''),
      'x-forwarded-for',
      (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    ];
    const event = JSON.stringify(
      functionUrlEvent(
        {
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          httpVersion: req.httpVersion,
          rawHeaders,
          body,
          sourceIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
        },
        { requestId, now, accountId: 'anonymous' },
      ),
    );
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let answer: HttpAnswer;
    const started = performance.now();
    if (size > INVOCATION_PAYLOAD_LIMIT || Buffer.byteLength(event) > INVOCATION_PAYLOAD_LIMIT) {
      answer = {
        statusCode: 413,
        headers: [['content-type', 'application/json']],
        body: Buffer.from(
          JSON.stringify({
            Message: `Request must be smaller than ${INVOCATION_PAYLOAD_LIMIT} bytes for the InvokeFunction operation`,
          }),
        ),
      };
    } else {
      const invoked = queue.then(() => options.invoke(event, requestId));
      queue = invoked.catch(() => undefined);
      try {
        const result = await invoked;
        answer =
          result.status === 200 && result.body.length <= INVOCATION_PAYLOAD_LIMIT
            ? httpAnswerForResult(result.body)
            : internalServerError();
      } catch {
        answer = internalServerError();
      }
    }
    const served: Invocation = {
      requestId,
      path,
      receivedAt: now.getTime(),
      durationMs: performance.now() - started,
      statusCode: answer.statusCode,
      body: body.toString('utf8'),
    };
    appendFileSync(options.journal, `${JSON.stringify(served)}\n`);
    const headerLines: string[] = [];
    for (const [name, value] of [
      ...answer.headers.filter(([n]) => n !== 'content-length'),
      ['content-length', String(answer.body.length)],
      ['x-amzn-requestid', requestId],
    ] as Array<[string, string]>) {
      headerLines.push(name, value);
    }
    res.writeHead(answer.statusCode, headerLines);
    res.end(answer.body);
  }

  const server: Server = createServer({ cert: options.cert, key: options.key }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The front's journal: every request it served, in order. */
export function readJournal(journal: string): Invocation[] {
  return readFileSync(journal, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Invocation);
}
