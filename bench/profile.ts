/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof`): self time by
 * package (or by file under src/ and dist/) and the hottest functions, to find where time goes.
 * Usage: node --import tsx bench/profile.ts <file.cpuprofile> [top=25]
 * To profile one review type under load, see bench/profile-review.ts.
 */
import { readFileSync } from 'node:fs';
import { isEntry } from './stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * In an unminified esbuild bundle (`node scripts/bundle.mjs --no-minify`), each module starts
 * with a `// node_modules/fastify/lib/reply.js` or `// src/server/app.ts` line: the module of a
 * line of the bundle. Minified bundles have none, and keep the bundle's own name.
 */
const bundleModules = new Map<string, Array<[number, string]>>();
function moduleInBundle(url: string, line: number): string | undefined {
  if (!url.startsWith('file://') || !/\/(bundle|chunks)\//.test(url)) return undefined;
  let starts = bundleModules.get(url);
  if (!starts) {
    starts = [];
    try {
      readFileSync(new URL(url), 'utf8')
        .split('\n')
        .forEach((text, i) => {
          const module = text.match(/^\/\/ ((?:node_modules|src)\/\S+)$/)?.[1];
          if (module) starts!.push([i, module]);
        });
    } catch {}
    bundleModules.set(url, starts);
  }
  let found: string | undefined;
  for (const [start, module] of starts) {
    if (start > line) break;
    found = module;
  }
  return found;
}

/** `fastify`, `@kubernetes/client-node`, `src/server/app.ts`, `node:internal/…`, or `(program)`. */
export function ownerOf(url: string, functionName: string, line = -1): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const bundled = moduleInBundle(url, line);
  if (bundled) url = bundled;
  const inModules = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (inModules) return inModules[1]!;
  if (/^src\//.test(url)) return url;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const inRepo = url.match(/\/((?:src|dist|bench)\/.+)$/);
  return inRepo ? inRepo[1]! : url;
}

/**
 * `skipMs`: leave out the samples of the profile's first milliseconds (start-up and warm-up, when
 * the profile is of a steady state). Shares are of busy time: `(idle)` samples are left out of it.
 */
export function summarise(profile: CpuProfile, top = 25, options: { skipMs?: number } = {}): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  let at = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    at += delta;
    if (at < (options.skipMs ?? 0)) return;
    if (byId.get(id)?.callFrame.functionName === '(idle)') {
      idle += delta;
      return;
    }
    selfMs.set(id, (selfMs.get(id) ?? 0) + delta);
  });
  const total = [...selfMs.values()].reduce((a, b) => a + b, 0);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)!.callFrame;
    const owner = ownerOf(frame.url, frame.functionName, frame.lineNumber);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + ms);
    const fn = `${frame.functionName || '(anonymous)'}  ${owner}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  }
  // Inclusive time of the project's own frames (dist/, src/): which call of ours costs what.
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  const ours = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const owner = ownerOf(frame.url, frame.functionName, frame.lineNumber);
      if (!/^(src|dist)\//.test(owner)) continue;
      const fn = `${frame.functionName || '(module)'}  ${owner}:${frame.lineNumber + 1}`;
      if (seen.has(fn)) continue; // recursion counts once
      seen.add(fn);
      ours.set(fn, (ours.get(fn) ?? 0) + ms);
    }
  }
  const table = (title: string, entries: Map<string, number>) => [
    title,
    ...[...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([name, ms]) =>
          `${ms.toFixed(1).padStart(9)} ms ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${name}`,
      ),
  ];
  return [
    `${total.toFixed(0)} ms busy sampled (shares below are of it; ${idle.toFixed(0)} ms idle left out${options.skipMs ? `, and the first ${options.skipMs.toFixed(0)} ms` : ''})`,
    '',
    ...table('self time by package / file', byOwner),
    '',
    ...table('self time by function', byFunction),
    '',
    ...table('inclusive time of our own functions (src/, dist/)', ours),
    '',
  ].join('\n');
}

if (isEntry(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(top ?? 25)));
}
