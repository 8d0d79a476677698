/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof`): self time by
 * package (or by file under src/ and dist/) and the hottest functions, to find where time goes.
 * Usage: node --import tsx bench/profile.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';
import { isEntry } from './stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** `fastify`, `@kubernetes/client-node`, `dist/server/app.js`, `node:internal/…`, or `(program)`. */
export function ownerOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const inModules = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (inModules) return inModules[1]!;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const inRepo = url.match(/\/((?:src|dist|bench)\/.+)$/);
  return inRepo ? inRepo[1]! : url;
}

export function summarise(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const total = [...selfMs.values()].reduce((a, b) => a + b, 0);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)!.callFrame;
    const owner = ownerOf(frame.url, frame.functionName);
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
      const owner = ownerOf(frame.url, frame.functionName);
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
    `${total.toFixed(0)} ms sampled`,
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
