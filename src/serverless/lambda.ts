import { createLambdaHandler } from './handler.js';

/**
 * The Lambda entry point (`index.handler` in the esbuild bundle, deploy/serverless/build-lambda.mjs).
 * The app is built at import, in Lambda's init phase. @kubernetes/client-node is loaded by the
 * first review that needs a look-up, so a cold /mutate never pays for it.
 */
export const handler = await createLambdaHandler();
