/**
 * The snippets docs/gitops.md tells users to apply, read from the document itself, so the stories
 * apply them exactly as written and a change to the doc is a change to what is tested.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { repoPath } from '../../../support/repo.js';

/** Every ```yaml block of docs/gitops.md, parsed. */
export function gitopsYamlSnippets(): unknown[] {
  const text = readFileSync(repoPath('docs/gitops.md'), 'utf8');
  return [...text.matchAll(/^( *)```yaml\n([\s\S]*?)^\1```$/gm)].map((m) => {
    const indent = m[1] ?? '';
    const body = (m[2] ?? '')
      .split('\n')
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join('\n');
    return parse(body) as unknown;
  });
}

interface Labelled {
  kind?: string;
  metadata?: { labels?: Record<string, string> };
}

/** Step 3's cluster Secret for the in-cluster destination. */
export function clusterSecretSnippet(): Labelled & Record<string, unknown> {
  const found = gitopsYamlSnippets().find(
    (s) =>
      (s as Labelled)?.kind === 'Secret' &&
      (s as Labelled).metadata?.labels?.['argocd.argoproj.io/secret-type'] === 'cluster',
  );
  if (!found) throw new Error('docs/gitops.md no longer shows the in-cluster cluster Secret (step 3)');
  return found as Labelled & Record<string, unknown>;
}

/** Every `data:` snippet docs/gitops.md tells users to add to argocd-cm, keyed by its argocd-cm key. */
export function argocdCmSnippets(): Record<string, string> {
  const data: Record<string, string> = {};
  for (const snippet of gitopsYamlSnippets()) {
    const entries = (snippet as { data?: Record<string, unknown> })?.data;
    if (!entries || (snippet as Labelled).kind !== undefined) continue;
    for (const [key, value] of Object.entries(entries)) data[key] = String(value);
  }
  return data;
}
