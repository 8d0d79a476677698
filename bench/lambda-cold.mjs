// One serverless cold start: import a Lambda handler module and invoke it once with a Function
// URL / API Gateway HTTP API (payload 2.0) event carrying an AdmissionReview. Prints `admitted`
// when the answer admits the review; the orchestrator times spawn → that line.
// Usage: node bench/lambda-cold.mjs <handler module> <path> <AdmissionReview file>
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [modulePath, path, reviewFile] = process.argv.slice(2);
const body = readFileSync(reviewFile, 'utf8');
const { handler } = await import(pathToFileURL(modulePath).href);

const event = {
  version: '2.0',
  routeKey: '$default',
  rawPath: path,
  rawQueryString: '',
  headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
  requestContext: {
    accountId: 'anonymous',
    apiId: 'bench',
    domainName: 'bench.lambda-url.local',
    domainPrefix: 'bench',
    http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
    requestId: 'bench',
    routeKey: '$default',
    stage: '$default',
    time: new Date().toISOString(),
    timeEpoch: Date.now(),
  },
  body,
  isBase64Encoded: false,
};
const context = {
  awsRequestId: 'bench',
  functionName: 'sts-guard',
  getRemainingTimeInMillis: () => 10_000,
  callbackWaitsForEmptyEventLoop: false,
};

const answer = await handler(event, context);
const review = JSON.parse(
  answer.isBase64Encoded ? Buffer.from(answer.body, 'base64').toString() : answer.body,
);
if (answer.statusCode !== 200 || review.response?.allowed !== true) {
  console.error(`not admitted: ${answer.statusCode} ${answer.body}`);
  process.exit(1);
}
process.stdout.write('admitted\n');
process.exit(0);
