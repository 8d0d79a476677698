import { createLambdaHandler } from './handler.js';

/**
 * The Lambda entry point (`index.handler` in the esbuild bundle, deploy/serverless/build-lambda.mjs).
 * The app is built, and @kubernetes/client-node loaded, at import: in Lambda's init phase, which
 * runs on a full vCPU, so the first review pays only for itself.
 */
export const handler = await createLambdaHandler();
