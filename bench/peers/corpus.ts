/**
 * The corpus of MongoDB StatefulSets both webhooks are run on for verdict parity: the ecosystem's
 * published shapes (test/fixtures/), the e2e scenarios (test/e2e/scenarios/), the README's
 * examples (examples/*.json, the StatefulSet inside each AdmissionReview) and the bundle's own
 * overlays (kustomize/overlays/*, rendered with kustomize: StatefulSet, Services, ConfigMaps). Each case is created with
 * its Services and ConfigMaps in a namespace of its own per webhook, then the StatefulSet is sent
 * as a server-side dry-run create; the API server's answer is the verdict.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { BOOTSTRAP_MARKER } from '../../src/engines/mongodb/bootstrap.js';
import { repoRoot } from '../../test/support/repo.js';
import type { PeerName, PeersCluster } from './cluster.js';
import { MONGODB_IMAGE_RE2 } from './policy.js';

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  lifecycle?: { postStart?: { exec?: { command?: string[] } } };
}
export interface StatefulSetManifest {
  apiVersion: string;
  kind: 'StatefulSet';
  metadata: {
    name: string;
    namespace?: string;
    ownerReferences?: Array<{ kind: string; controller?: boolean }>;
  };
  spec: { replicas?: number; template: { spec: { containers: Container[] } } };
}
interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
}

export interface CorpusCase {
  /** Where it comes from, relative to the repository. */
  source: string;
  /** Services and ConfigMaps created before the StatefulSet. */
  objects: Manifest[];
  statefulSet: StatefulSetManifest;
  /** Why this case depends on a part of sts-guard the Kyverno policy leaves out (policy.ts LEFT_OUT). */
  outside?: string;
}

const OPERATOR_KINDS = [
  'MongoDBCommunity',
  'MongoDB',
  'MongoDBOpsManager',
  'MongoDBMultiCluster',
  'PerconaServerMongoDB',
];
const SHELLS = /^(\/bin\/|\/usr\/bin\/)?(sh|bash|dash|ash)$/;
// JavaScript reads the same pattern without RE2's leading (?i) flag group.
const MONGODB_IMAGE = new RegExp(MONGODB_IMAGE_RE2.replace('(?i)', ''), 'i');

/** The reason a StatefulSet's verdict rests on a part Kyverno's policy leaves out, if it does. */
export function outsideCommonPart(sts: StatefulSetManifest): string | undefined {
  const owner = sts.metadata.ownerReferences?.find((r) => r.controller && OPERATOR_KINDS.includes(r.kind));
  if (owner) return `owned by a ${owner.kind}: sts-guard leaves it to the operator`;
  for (const c of sts.spec.template.spec.containers.filter((c) => MONGODB_IMAGE.test(c.image ?? ''))) {
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    if (/(^|\/)bitnami\//.test(c.image ?? '')) return 'bitnami/mongodb, configured by its environment';
    if (SHELLS.test(c.command?.[0] ?? ''))
      return 'a shell wrapper, which sts-guard parses as the shell would';
    if (argv.some((a) => a === '--config' || a === '-f' || a.startsWith('--config='))) {
      return 'a mongod config file, which sts-guard reads from its ConfigMap';
    }
  }
  return undefined;
}

function yamlDocuments(path: string): Manifest[] {
  return yamlText(readFileSync(path, 'utf8'));
}

function yamlText(text: string): Manifest[] {
  // YAML 1.1, as Kubernetes reads manifests (`defaultMode: 0755` is octal there).
  return parseAllDocuments(text, { version: '1.1' })
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

function fromManifests(source: string, docs: Manifest[]): CorpusCase {
  const statefulSet = docs.find((d) => d.kind === 'StatefulSet') as StatefulSetManifest | undefined;
  if (!statefulSet) throw new Error(`${source}: no StatefulSet`);
  const objects = docs.filter((d) => d !== (statefulSet as Manifest));
  return { source, objects, statefulSet, outside: outsideCommonPart(statefulSet) };
}

/** `kustomize` renders the overlays; without it they are left out of the corpus. */
export async function loadCorpus(kustomize?: string): Promise<CorpusCase[]> {
  const cases: CorpusCase[] = [];
  const fixtures = join(repoRoot, 'test/fixtures');
  for (const file of readdirSync(fixtures)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    cases.push(fromManifests(`test/fixtures/${file}`, yamlDocuments(join(fixtures, file))));
  }
  const scenarios = join(repoRoot, 'test/e2e/scenarios');
  for (const scenario of readdirSync(scenarios).sort()) {
    const files = readdirSync(join(scenarios, scenario))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    const docs = files.flatMap((f) => yamlDocuments(join(scenarios, scenario, f)));
    cases.push(fromManifests(`test/e2e/scenarios/${scenario}`, docs));
  }
  for (const file of readdirSync(join(repoRoot, 'examples'))
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const review = JSON.parse(readFileSync(join(repoRoot, 'examples', file), 'utf8')) as {
      request: { object: StatefulSetManifest };
    };
    cases.push(fromManifests(`examples/${file} (request.object; no Service)`, [review.request.object]));
  }
  const overlays = join(repoRoot, 'kustomize/overlays');
  for (const overlay of kustomize ? readdirSync(overlays).sort() : []) {
    const { stdout } = await promisify(execFile)(kustomize!, ['build', join(overlays, overlay)]);
    const docs = yamlText(stdout);
    const sts = docs.find((d) => d.kind === 'StatefulSet') as StatefulSetManifest | undefined;
    const labels =
      (sts?.spec.template as { metadata?: { labels?: Record<string, string> } })?.metadata?.labels ?? {};
    // The StatefulSet, its ConfigMaps and the Services over its pods (the app's NodePort
    // Services would clash between the two namespaces and play no part in the verdict).
    const overPods = (d: Manifest) =>
      Object.entries(
        (d as { spec?: { selector?: Record<string, string> } }).spec?.selector ?? { '': '-' },
      ).every(([k, v]) => labels[k] === v);
    const kept = docs.filter(
      (d) => d.kind === 'StatefulSet' || d.kind === 'ConfigMap' || (d.kind === 'Service' && overPods(d)),
    );
    cases.push(fromManifests(`kustomize/overlays/${overlay}`, kept));
  }
  return cases;
}

export interface Verdict {
  allowed: boolean;
  /** The API server's message for a denial (first line). */
  message: string;
  /** The postStart command each MongoDB container ended up with, by container name. */
  hooks: Record<string, string | undefined>;
}

/**
 * The postStart command of each MongoDB container of the answered object, with the namespace
 * written as <namespace> (each webhook ran in a namespace of its own).
 */
function hooksOf(sts: StatefulSetManifest, namespace: string): Record<string, string | undefined> {
  return Object.fromEntries(
    sts.spec.template.spec.containers
      .filter((c) => MONGODB_IMAGE.test(c.image ?? ''))
      .map((c) => [
        c.name,
        c.lifecycle?.postStart?.exec?.command?.join('\n').replaceAll(namespace, '<namespace>'),
      ]),
  );
}

const inNamespace = <T extends { metadata: { namespace?: string } }>(o: T, namespace: string): T => ({
  ...o,
  metadata: { ...o.metadata, namespace },
});

/** Creates the case's objects in `namespace`, then sends its StatefulSet as a dry-run create. */
export async function verdictOf(cluster: PeersCluster, c: CorpusCase, namespace: string): Promise<Verdict> {
  const agent = cluster.agent(1);
  try {
    if (c.objects.length > 0) {
      await cluster.kubectl(
        ['create', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: c.objects.map((o) => inNamespace(o, namespace)),
        }),
      );
    }
    const answer = await cluster.api(
      agent,
      'POST',
      `/apis/apps/v1/namespaces/${namespace}/statefulsets?dryRun=All`,
      JSON.stringify(inNamespace(c.statefulSet, namespace)),
    );
    if (answer.status === 201) {
      return {
        allowed: true,
        message: '',
        hooks: hooksOf(JSON.parse(answer.body) as StatefulSetManifest, namespace),
      };
    }
    const status = JSON.parse(answer.body) as { message?: string; reason?: string };
    if (answer.status !== 400 && answer.status !== 403 && answer.status !== 422) {
      throw new Error(`${c.source}: the API server answered ${answer.status}: ${answer.body}`);
    }
    return { allowed: false, message: (status.message ?? '').split('\n')[0] ?? '', hooks: {} };
  } finally {
    agent.destroy();
  }
}

/** What the two verdicts share: admitted or not, and which containers got sts-guard's hook. */
export function agreement(stsGuard: Verdict, kyverno: Verdict): { agree: boolean; why: string } {
  if (stsGuard.allowed !== kyverno.allowed) {
    return {
      agree: false,
      why: `sts-guard ${stsGuard.allowed ? 'admits' : 'denies'}, Kyverno ${kyverno.allowed ? 'admits' : 'denies'}`,
    };
  }
  if (!stsGuard.allowed) return { agree: true, why: 'both deny' };
  const names = new Set([...Object.keys(stsGuard.hooks), ...Object.keys(kyverno.hooks)]);
  for (const name of names) {
    const [a, b] = [stsGuard.hooks[name], kyverno.hooks[name]];
    const injected = (h?: string) => h?.includes(BOOTSTRAP_MARKER) ?? false;
    if (injected(a) !== injected(b)) {
      return {
        agree: false,
        why: `container ${name}: hook from sts-guard ${injected(a)}, from Kyverno ${injected(b)}`,
      };
    }
    // The same script but for the initiation window, which only sts-guard stamps.
    const windowless = (h?: string) => h?.replace(/^INITIATE_UNTIL=\d+$/m, 'INITIATE_UNTIL=…');
    if (injected(a) && windowless(a) !== windowless(b)) {
      const [lines, others] = [windowless(a)?.split('\n') ?? [], windowless(b)?.split('\n') ?? []];
      const at = lines.findIndex((line, i) => line !== others[i]);
      return {
        agree: false,
        why: `container ${name}: the hook scripts differ beyond the initiation window, first at line ${at + 1}: sts-guard ${JSON.stringify(lines[at])}, Kyverno ${JSON.stringify(others[at])}`,
      };
    }
    if (!injected(a) && a !== b) return { agree: false, why: `container ${name}: its own postStart changed` };
  }
  const hooked = Object.values(stsGuard.hooks).some((h) => h?.includes(BOOTSTRAP_MARKER));
  return { agree: true, why: hooked ? 'both admit and inject the same hook' : 'both admit, no hook' };
}

export interface ParityRow {
  source: string;
  outside?: string;
  verdicts: Record<Exclude<PeerName, 'bare'>, Verdict>;
  agree: boolean;
  why: string;
}

/** Every case through sts-guard and Kyverno, each in namespaces of its own. */
export async function parity(cluster: PeersCluster, corpus: CorpusCase[]): Promise<ParityRow[]> {
  const rows: ParityRow[] = [];
  for (const [i, c] of corpus.entries()) {
    const verdicts = {} as ParityRow['verdicts'];
    for (const peer of ['sts-guard', 'kyverno'] as const) {
      const namespace = `parity-${i}-${peer}`;
      await cluster.namespace(namespace, peer);
      verdicts[peer] = await verdictOf(cluster, c, namespace);
    }
    rows.push({
      source: c.source,
      outside: c.outside,
      verdicts,
      ...agreement(verdicts['sts-guard'], verdicts.kyverno),
    });
  }
  return rows;
}
