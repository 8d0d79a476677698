import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Document, isMap, isSeq, LineCounter, type Node, parseAllDocuments, type YAMLError } from 'yaml';
import { renderKustomization } from '../render/kustomize.js';
import { InputError } from './errors.js';

/** A Kubernetes object as read from a manifest: a mapping, with kind and apiVersion when it is one. */
export type Manifest = Record<string, unknown>;

/** One object of the input, and where the user finds it. */
export interface ManifestObject {
  /** The file, the kustomization directory, or `<stdin>`. */
  source: string;
  /** 1-based line the object starts on; absent for kustomize output, whose lines are not the user's. */
  line?: number;
  object: Manifest;
}

/** The names kustomize looks for, in its own order. */
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const MANIFEST_FILE = /\.(ya?ml|json)$/i;
export const STDIN = '-';
const STDIN_SOURCE = '<stdin>';

const isMapping = (value: unknown): value is Manifest =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `kind: List` (kubectl get -o yaml) and typed lists such as `ServiceList` from the API. */
function isList(value: Manifest): value is Manifest & { kind: string; items: unknown[] } {
  return typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items);
}

/** yaml's messages end in " at line N, column M:" followed by the offending lines; we print file:line:col. */
function describeYamlError(error: YAMLError, source: string, withLines: boolean): string {
  const [first = error.message, ...context] = error.message.split('\n');
  const message = first.replace(/ at line \d+, column \d+:?$/, '');
  const position = error.linePos?.[0];
  const where = withLines && position ? `${source}:${position.line}:${position.col}` : source;
  const snippet = context.filter((l) => l.trim() !== '').map((l) => `  ${l}`);
  return [`${where}: YAML error: ${message}`, ...(withLines ? snippet : [])].join('\n');
}

/**
 * Every object in a multi-document YAML or JSON text (JSON is YAML), with list items unpacked.
 * Empty documents are skipped. A document that is not a mapping (a scalar, a bare sequence) is
 * no Kubernetes object; it is kept, wrapped, so that it counts as passed through like any
 * unknown kind.
 */
export function parseManifests(text: string, source: string, withLines = true): ManifestObject[] {
  const lineCounter = new LineCounter();
  const lineOf = (node: Node | null | undefined, fallback?: number) =>
    withLines && node?.range ? lineCounter.linePos(node.range[0]).line : fallback;
  const objects: ManifestObject[] = [];
  for (const document of parseAllDocuments(text, { lineCounter }) as Document.Parsed[]) {
    const error = document.errors[0];
    if (error) throw new InputError(describeYamlError(error, source, withLines));
    let value: unknown;
    try {
      value = document.toJS();
    } catch (cause) {
      // e.g. an alias bomb, refused by yaml's maxAliasCount
      throw new InputError(`${source}: YAML error: ${(cause as Error).message}`);
    }
    if (value === null || value === undefined) continue;
    const line = lineOf(document.contents);
    const at = (object: Manifest, itemLine?: number): ManifestObject => ({
      source,
      ...(itemLine === undefined ? {} : { line: itemLine }),
      object,
    });
    if (!isMapping(value)) {
      objects.push(at({ value }, line));
      continue;
    }
    if (!isList(value)) {
      objects.push(at(value, line));
      continue;
    }
    // Items of a typed list (StatefulSetList) may omit kind and apiVersion; the list names them.
    const itemKind = value.kind === 'List' ? undefined : value.kind.slice(0, -'List'.length);
    const itemNodes = isMap(document.contents) ? document.contents.get('items', true) : undefined;
    value.items.forEach((item, index) => {
      if (!isMapping(item)) return;
      const node = isSeq(itemNodes) ? (itemNodes.items[index] as Node | undefined) : undefined;
      const object =
        itemKind && item.kind === undefined
          ? { apiVersion: value.apiVersion, kind: itemKind, ...item }
          : item;
      objects.push(at(object, lineOf(node, line)));
    });
  }
  return objects;
}

/** The text of the kustomization file in `dir`, if it has one. */
async function kustomizationIn(dir: string): Promise<string | undefined> {
  for (const name of KUSTOMIZATION_FILES) {
    try {
      return await readFile(join(dir, name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return undefined;
}

/** A Component only means something inside the overlay that lists it; `kustomize build` refuses it alone. */
function isComponent(kustomization: string): boolean {
  return /^kind:\s*Component\s*$/m.test(kustomization);
}

async function render(dir: string): Promise<ManifestObject[]> {
  let yaml: string;
  try {
    yaml = await renderKustomization(dir);
  } catch (error) {
    throw new InputError(`${dir}: ${(error as Error).message}`);
  }
  return parseManifests(yaml, dir, false);
}

async function isDirectory(path: string, entry: Dirent): Promise<boolean> {
  if (entry.isDirectory()) return true;
  return entry.isSymbolicLink() && (await stat(path)).isDirectory();
}

/** Gathers objects, and the problem of each input that could not be read, instead of stopping at the first. */
class Reader {
  readonly objects: ManifestObject[] = [];
  readonly problems: string[] = [];

  /** Runs `read` and keeps its objects; a failure becomes a problem naming `source`. */
  async collect(source: string, read: () => Promise<ManifestObject[]>): Promise<void> {
    try {
      this.objects.push(...(await read()));
    } catch (error) {
      if (error instanceof InputError) this.problems.push(error.message);
      // Node's file-system messages name the code and the path: "ENOENT: no such file or directory, …"
      else this.problems.push(`${source}: cannot read: ${(error as Error).message}`);
    }
  }
}

const readFileManifests = async (path: string) => parseManifests(await readFile(path, 'utf8'), path);

/**
 * A directory: rendered with kustomize when it holds a kustomization (its files are then bases
 * and patches, not objects), else every *.yaml, *.yml and *.json in it and below, in name order.
 * A subdirectory that holds a kustomization is rendered the same way.
 */
async function readDirectory(dir: string, top: boolean, reader: Reader): Promise<ManifestObject[]> {
  const kustomization = await kustomizationIn(dir);
  if (kustomization !== undefined) {
    if (!top && isComponent(kustomization)) return [];
    return render(dir);
  }
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue; // .git, editor state
    const path = join(dir, entry.name);
    if (await isDirectory(path, entry)) await reader.collect(path, () => readDirectory(path, false, reader));
    else if (MANIFEST_FILE.test(entry.name)) await reader.collect(path, () => readFileManifests(path));
  }
  return []; // everything went into the reader, file by file
}

async function readInput(input: string, readStdin: () => Promise<string>, reader: Reader) {
  if (input === STDIN) return parseManifests(await readStdin(), STDIN_SOURCE);
  if ((await stat(input)).isDirectory()) return readDirectory(input, true, reader);
  return readFileManifests(input);
}

/**
 * Reads every input (`-` is stdin) into objects. Reports every unreadable input at once, so a
 * CI run shows all broken files, not only the first.
 */
export async function readManifests(
  inputs: readonly string[],
  readStdin: () => Promise<string>,
): Promise<ManifestObject[]> {
  if (inputs.filter((i) => i === STDIN).length > 1) {
    throw new InputError(`"${STDIN}" (stdin) can be given once`);
  }
  const reader = new Reader();
  for (const input of inputs) await reader.collect(input, () => readInput(input, readStdin, reader));
  if (reader.problems.length > 0) throw new InputError(reader.problems.join('\n'));
  return reader.objects;
}
