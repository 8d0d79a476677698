import awsLambdaFastify from '@fastify/aws-lambda';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { createWebhook } from '../server/webhook.js';

/** What a Lambda Function URL or API Gateway sends (payload 1.0 or 2.0); @fastify/aws-lambda reads it. */
export type LambdaHttpEvent = Record<string, unknown>;

export interface LambdaHttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded?: boolean;
}

export type LambdaHandler = (event: LambdaHttpEvent, context: object) => Promise<LambdaHttpResponse>;

/**
 * The webhook as an AWS Lambda handler: the same Fastify app as the HTTPS server, over plain HTTP
 * because the Function URL or API Gateway in front terminates TLS. Configuration comes from the
 * environment like `npm start`; the kubeconfig from KUBECONFIG (docs/deploy.md, "Serverless").
 */
export async function createLambdaHandler(env: NodeJS.ProcessEnv = process.env): Promise<LambdaHandler> {
  const config = loadConfig(env);
  const log = pino({ level: config.logLevel, base: { service: 'sts-guard', runtime: 'lambda' } });
  // No watch-fed cache, whatever SERVICE_CACHE says: a Lambda instance is frozen between
  // invocations and may be new for any of them, so every look-up is a live GET. The client is
  // loaded by the first review that needs it (createWebhook).
  const { app } = await createWebhook(config, log, { cache: false });
  // decorateRequest: the routes never read the Lambda event, so skip the per-request bookkeeping.
  const proxy = awsLambdaFastify<LambdaHttpEvent>(app, { decorateRequest: false });
  await app.ready();
  return proxy as LambdaHandler;
}
