import { createLambdaHandler } from './handler.js';

/**
 * The Lambda entry point (`index.handler` in the esbuild bundle, deploy/serverless/build-lambda.mjs).
 * The app is built at import, in Lambda's init phase, so the first review pays only for itself;
 * `@kubernetes/client-node` is still loaded on the first look-up, not here.
 */
export const handler = await createLambdaHandler();
