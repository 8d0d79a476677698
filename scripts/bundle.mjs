#!/usr/bin/env node
// Bundles an entry point with esbuild into ES modules: one file for what it imports statically,
// plus a chunk for each dynamic import(), loaded only when reached. A bundle starts far faster
// than node_modules/ file by file: Node resolves and compiles one file instead of hundreds
// (bench/README.md, "Cold start"), and it needs no node_modules/ at run time.
//
//   node scripts/bundle.mjs [--outdir dist/bundle] [--no-minify] [--sourcemap]
//
// writes the server entries: dist/bundle/server.mjs (`npm start`, the image's command: HTTPS) and
// dist/bundle/http.mjs (plain HTTP behind a TLS-terminating front, e.g. Knative), and the
// background audit, dist/bundle/audit/main.mjs (`npm run start:audit`, deploy/audit). The Lambda
// bundle is deploy/serverless/build-lambda.mjs, built with `bundle()` below.
import { rm } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Builds `entryPoints` (output name → source) into `outdir`, replacing what was there, and
 * returns one line per file: its size, whether it loads at start or only if reached, and what it holds.
 */
export async function bundle({ entryPoints, outdir, minify = true, sourcemap = false, external = [] }) {
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints,
    outdir,
    bundle: true,
    platform: 'node',
    // The oldest Node.js in package.json's engines: syntax newer than it would be lowered.
    target: 'node22',
    format: 'esm',
    splitting: true,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    minify,
    sourcemap: sourcemap ? 'linked' : false,
    legalComments: 'linked',
    // Several dependencies are CommonJS and call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __stsGuardCreateRequire } from 'node:module'; const require = __stsGuardCreateRequire(import.meta.url);",
    },
    external,
    metafile: true,
    logLevel: 'warning',
  });
  return describeOutputs(result.metafile.outputs, Object.values(entryPoints));
}

function describeOutputs(outputs, sources) {
  const atStart = new Set();
  const visit = (file) => {
    if (atStart.has(file) || !outputs[file]) return;
    atStart.add(file);
    for (const imported of outputs[file].imports)
      if (imported.kind === 'import-statement') visit(imported.path);
  };
  for (const [file, output] of Object.entries(outputs)) if (sources.includes(output.entryPoint)) visit(file);

  const lines = [];
  let startBytes = 0;
  for (const [file, output] of Object.entries(outputs)) {
    if (!file.endsWith('.mjs')) continue;
    if (atStart.has(file)) startBytes += output.bytes;
    const inputs = Object.keys(output.inputs);
    const has = (name) => inputs.some((input) => input.includes(`node_modules/${name}/`));
    const contents = has('@kubernetes/client-node')
      ? '@kubernetes/client-node and its dependencies'
      : has('selfsigned')
        ? 'selfsigned: development certificates only'
        : sources.includes(output.entryPoint)
          ? `entry: ${output.entryPoint}, ${inputs.length} modules`
          : inputs.length === 0
            ? "esbuild's shared helpers"
            : `${inputs.length} modules`;
    const size = `${(output.bytes / 1024).toFixed(1)} KiB`.padStart(11);
    const role = atStart.has(file) ? 'at start' : 'if reached';
    lines.push(
      `${size}  ${role.padEnd(10)}  ${relative(process.cwd(), resolve(repoRoot, file))}  (${contents})`,
    );
  }
  lines.push(
    `${`${(startBytes / 1024).toFixed(1)} KiB`.padStart(11)}  loaded by a cold instance before its first review${sources.length > 1 ? ' (all entries)' : ''}`,
  );
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values: args } = parseArgs({
    options: {
      outdir: { type: 'string', default: resolve(repoRoot, 'dist/bundle') },
      'no-minify': { type: 'boolean', default: false },
      sourcemap: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
  });
  const lines = await bundle({
    entryPoints: { server: 'src/server/main.ts', http: 'src/serverless/http.ts' },
    // Fastify requires these only when reached: its schema compilers for route schemas (sts-guard
    // has none, src/server/app.ts) and light-my-request for inject() (tests). Left out, a third of
    // the bundle less to compile at start; reaching one anyway fails with "Cannot find module".
    external: ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'],
    outdir: resolve(args.outdir),
    minify: !args['no-minify'],
    sourcemap: args.sourcemap,
  });
  // The audit apart, into its own directory: built with the webhook, the two would share one
  // client-node chunk holding what only the audit uses (custom objects, Leases, discovery), and
  // the webhook's lazily loaded client would grow by it.
  const auditLines = await bundle({
    entryPoints: { main: 'src/audit/main.ts' },
    outdir: resolve(args.outdir, 'audit'),
    minify: !args['no-minify'],
    sourcemap: args.sourcemap,
  });
  if (!args.quiet) console.log([...lines, ...auditLines].join('\n'));
}
