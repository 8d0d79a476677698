import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';
import ts from 'typescript';

/**
 * The shape of src/ that the README and STYLE.md describe, checked: imports point one way (no
 * circle, type-only imports included, as madge --circular counts them), the policy and the engines
 * do no I/O and know no edge, and no hand-written file holds two ideas' worth of lines.
 */
const root = join(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(entry) && !entry.endsWith('.d.ts') ? [path] : [];
  });
}

const src = sourceFiles(join(root, 'src'));
const rel = (path: string) => relative(root, path);

/** The files of src/ a file imports (import, import type, export … from, import()), resolved. */
function localImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((i) => i.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => resolve(dirname(file), name).replace(/\.js$/, '.ts'));
}

/** Every import of a file, local ones as paths relative to the repository, packages by name. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map((i) =>
    i.fileName.startsWith('.') ? rel(resolve(dirname(file), i.fileName).replace(/\.js$/, '.ts')) : i.fileName,
  );
}

t.test('no import circle in src/ (type-only imports count)', async (t) => {
  const graph = new Map(src.map((file) => [file, localImports(file)]));
  const circles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      circles.push([...path.slice(path.indexOf(file)), file].map(rel).join(' → '));
      return;
    }
    state.set(file, 'visiting');
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of src) visit(file, []);
  t.same(circles, [], circles.join('\n'));
  t.ok(graph.size > 50, `${graph.size} files of src/ read`);
});

/** What each layer may import besides itself: the layers point one way, toward the policy. */
const ALLOWED: Record<string, { layers: string[]; packages: string[] }> = {
  'src/engines': { layers: [], packages: ['@kubernetes/client-node', 'yaml'] },
  'src/policy': {
    layers: ['src/engines'],
    packages: ['node:util', '@kubernetes/client-node', 'yaml', 'fast-json-patch'],
  },
  'src/pipeline': {
    layers: ['src/policy', 'src/engines'],
    packages: ['@kubernetes/client-node', 'fast-json-patch'],
  },
};

t.test('the policy and the engines know no edge: no I/O, no HTTP, no cluster, no CLI', async (t) => {
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    for (const file of src.filter((f) => rel(f).startsWith(`${layer}/`))) {
      for (const imported of importsOf(file)) {
        const ok = imported.startsWith('src/')
          ? imported.startsWith(`${layer}/`) || allowed.layers.some((l) => imported.startsWith(`${l}/`))
          : allowed.packages.includes(imported);
        t.ok(ok, `${rel(file)} may import ${imported}`);
      }
    }
  }
});

t.test("the audit's report building is pure: findings in, reports and write plans out", async (t) => {
  // The edge (writer.ts, lease.ts, informers.ts, controller.ts) does the I/O; these decide what to write.
  const pure: Record<string, string[]> = {
    'src/audit/results.ts': ['src/policy/index.ts'],
    'src/audit/report.ts': ['node:util', 'src/audit/evaluate.ts', 'src/audit/results.ts'],
  };
  for (const [file, allowed] of Object.entries(pure)) {
    const imports = importsOf(join(root, file));
    t.same(
      imports.filter((i) => !allowed.includes(i)),
      [],
      `${file} imports only ${allowed.join(', ')}`,
    );
  }
  // evaluate.ts for its types only: evaluating goes through the pipeline, outside this code.
  t.match(
    readFileSync(join(root, 'src/audit/report.ts'), 'utf8'),
    /^import type \{[^}]*\} from '\.\/evaluate\.js';$/m,
  );
});

t.test('no hand-written file of src/ or bench/ is over 400 lines (src/generated/ aside)', async (t) => {
  const files = [...src, ...sourceFiles(join(root, 'bench'))].filter(
    (f) => !rel(f).startsWith('src/generated/'),
  );
  const long = files
    .map((file) => ({ file: rel(file), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
    .filter(({ lines }) => lines > 400);
  t.same(long, [], long.map((l) => `${l.file}: ${l.lines} lines`).join('\n'));
});
