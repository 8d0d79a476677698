#!/usr/bin/env node
// Bundles the Lambda handler (src/serverless/lambda.ts) with esbuild (scripts/bundle.mjs) into ES
// modules under dist/lambda/: index.mjs (Lambda handler setting: index.handler, runtime
// nodejs24.x) plus chunks for what the code imports dynamically: the Kubernetes client, loaded by
// the first review that needs a look-up, and the development-certificate code, never in Lambda.
// Prints each file's size and whether a cold instance loads it before its first review.
//
//   node deploy/serverless/build-lambda.mjs [--outdir dist/lambda] [--no-minify] [--sourcemap]
//   cd dist/lambda && zip -r ../sts-guard-lambda.zip .      # the deployment package
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { bundle, repoRoot } from '../../scripts/bundle.mjs';

const { values: args } = parseArgs({
  options: {
    outdir: { type: 'string', default: resolve(repoRoot, 'dist/lambda') },
    'no-minify': { type: 'boolean', default: false },
    sourcemap: { type: 'boolean', default: false },
  },
});
const lines = await bundle({
  entryPoints: { index: 'src/serverless/lambda.ts' },
  outdir: resolve(args.outdir),
  minify: !args['no-minify'],
  sourcemap: args.sourcemap,
});
console.log(lines.join('\n'));
