/**
 * What the e2e runners share (run.ts for the Deployment path, run-lambda.ts for the Lambda path):
 * the cached builds, the kubectls, rendering deploy/'s webhook registrations for a
 * test endpoint, and running the story files under tap.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { repoPath, repoRoot } from '../../support/repo.js';
import type { E2eState } from './env.js';

const run = promisify(execFile);

/** The runners' progress lines, timestamped, on stderr. */
export const say = (message: string) =>
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Runs a build script (progress on stderr) and returns the last line it prints on stdout. */
export function buildScriptOutput(script: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => {
      if (code === 0) resolve(out.trim().split('\n').at(-1) ?? '');
      else reject(new Error(`${script} exited with ${code}`));
    });
  });
}

/** Builds (or finds cached) the control plane; the script's last stdout line is the bin directory. */
export async function controlPlaneBinaries(): Promise<string> {
  if (process.env.STS_GUARD_E2E_BIN) return process.env.STS_GUARD_E2E_BIN;
  return buildScriptOutput('test/e2e/control-plane/build.sh');
}

/**
 * The kubectl the stories drive: the one built with the control plane (same minor as the API
 * server, test/e2e/control-plane/build.sh). STS_GUARD_E2E_KUBECTL overrides.
 */
export function clusterKubectl(binDir: string): string {
  const path = process.env.STS_GUARD_E2E_KUBECTL ?? join(binDir, 'kubectl');
  if (!existsSync(path)) throw new Error(`no kubectl at ${path}: run test/e2e/control-plane/build.sh`);
  return path;
}

/**
 * The machine's newest kubectl, kept for the one story that checks kubectl outside the supported
 * skew (test/e2e/kubectl-skew.e2e.ts): a cloud SDK keeps other minor versions beside it as
 * kubectl.1.NN. Undefined when none is on PATH.
 */
export function machineKubectl(binDir: string): string | undefined {
  const candidates: Array<{ path: string; minor: number }> = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === binDir || !existsSync(join(dir, 'kubectl'))) continue;
    // /usr/bin/kubectl is usually a link into the SDK, where its siblings live.
    const sdk = dirname(realpathSync(join(dir, 'kubectl')));
    for (const entry of readdirSync(sdk)) {
      const minor = /^kubectl\.1\.(\d+)$/.exec(entry)?.[1];
      if (minor) candidates.push({ path: join(sdk, entry), minor: Number(minor) });
    }
    candidates.push({ path: join(dir, 'kubectl'), minor: -1 });
  }
  candidates.sort((a, b) => b.minor - a.minor);
  return candidates[0]?.path;
}

/** kubectl with `kubeconfig`; rejects with kubectl's stderr when it fails. */
export async function kubectl(
  kubectlPath: string,
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlPath,
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`kubectl ${args.join(' ')}: ${stderr || error.message}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

type WebhookConfiguration = KubernetesObject & {
  webhooks?: Array<{ clientConfig: Record<string, unknown> }>;
};

/** Every webhook of the rendered configurations trusts `caPem` (clientConfig.caBundle). */
function withCaBundle(objects: WebhookConfiguration[], caPem: string): string {
  const caBundle = Buffer.from(caPem).toString('base64');
  for (const object of objects) {
    for (const webhook of object.webhooks ?? []) webhook.clientConfig.caBundle = caBundle;
  }
  return objects.map((o) => stringify(o)).join('---\n');
}

/**
 * The serving certificate of a test server, from the script users run (certs/generate.sh):
 * 127.0.0.1 for the API server, localhost for the suite's own requests (they send SNI
 * localhost). Returns the directory holding ca.crt, tls.crt and tls.key.
 */
export async function serverCertificate(dir: string): Promise<string> {
  const certs = join(dir, 'certs');
  await run('bash', [
    repoPath('certs/generate.sh'),
    '--host',
    '127.0.0.1',
    '--host',
    'localhost',
    '--out',
    certs,
  ]);
  return certs;
}

/** The url-registration component's endpoint: the ConfigMap a user writes as endpoint.yaml. */
export function endpointConfigMap(host: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'sts-guard-endpoint', annotations: { 'config.kubernetes.io/local-config': 'true' } },
    data: { host },
  });
}

/**
 * deploy/'s webhook configurations, pointed at this sts-guard: the same files through the
 * url-registration component (clientConfig.url) plus the caBundle of the certificate it serves.
 */
export async function renderWebhooks(
  binDir: string,
  dir: string,
  host: string,
  caPem: string,
): Promise<string> {
  const kustomization = join(dir, 'webhooks');
  await mkdir(kustomization, { recursive: true });
  const from = (path: string) => relative(kustomization, join(repoRoot, path));
  await writeFile(
    join(kustomization, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [from('deploy/webhooks'), 'endpoint.yaml'],
      components: [from('deploy/serverless/components/url-registration')],
    }),
  );
  await writeFile(join(kustomization, 'endpoint.yaml'), endpointConfigMap(host));
  const { stdout } = await run(join(binDir, 'kustomize'), ['build', kustomization]);
  return withCaBundle(
    parseAllDocuments(stdout).map((d) => d.toJS() as WebhookConfiguration),
    caPem,
  );
}

/**
 * `kubectl kustomize deploy/serverless/webhook-url` as docs/deploy.md registers a Lambda Function
 * URL, with the host a user writes into its endpoint.yaml replaced by `host` (the test's Function
 * URL front) and the caBundle of the front's certificate added (a real Function URL serves a
 * public CA's certificate, which the API server trusts without one). Everything else (the
 * namespace, RBAC, the token Secret, failurePolicy, timeouts, selectors) is rendered as shipped.
 */
export async function renderWebhookUrl(binDir: string, host: string, caPem: string): Promise<string> {
  const dir = join(repoRoot, 'deploy/serverless/webhook-url');
  const { stdout } = await run(join(binDir, 'kustomize'), ['build', dir]);
  const endpoint = parseAllDocuments(await readFile(join(dir, 'endpoint.yaml'), 'utf8'))[0]?.toJS() as
    | { data?: { host?: string } }
    | undefined;
  const shipped = endpoint?.data?.host;
  if (!shipped) throw new Error(`${dir}/endpoint.yaml has no data.host`);
  const objects = parseAllDocuments(stdout).map((d) => d.toJS() as WebhookConfiguration);
  let pointed = 0;
  for (const object of objects) {
    for (const webhook of object.webhooks ?? []) {
      const url = String(webhook.clientConfig.url ?? '');
      if (!url.startsWith(`https://${shipped}/`)) {
        throw new Error(`webhook-url renders clientConfig.url ${url}, not https://${shipped}/...`);
      }
      webhook.clientConfig.url = url.replace(`https://${shipped}/`, `https://${host}/`);
      pointed++;
    }
  }
  if (pointed === 0) throw new Error('deploy/serverless/webhook-url rendered no webhooks');
  return withCaBundle(objects, caPem);
}

/** How one step of a run ended: its exit status and its counts, for the summary line CI reads. */
export interface Outcome {
  /** The step's exit status (0: passed). */
  status: number;
  pass: number;
  fail: number;
}

/** Runs the story files one after another under tap, with the state file; tap's summary line gives the counts. */
export async function runStories(stateFile: string, files: string[], timeoutSeconds = 900): Promise<Outcome> {
  say(`running ${files.length} e2e story file(s)`);
  let out = '';
  const status = await new Promise<number>((resolve) => {
    const tap = spawn(
      join(repoRoot, 'node_modules/.bin/tap'),
      ['--jobs=1', `--timeout=${timeoutSeconds}`, '--disable-coverage', ...files],
      {
        cwd: repoRoot,
        stdio: ['inherit', 'pipe', 'inherit'],
        env: { ...process.env, STS_GUARD_E2E_STATE: stateFile },
      },
    );
    tap.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      out = (out + chunk.toString()).slice(-4096);
    });
    tap.on('exit', (code) => resolve(code ?? 1));
  });
  const summary = [...out.matchAll(/^# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/gm)].at(-1);
  return { status, pass: Number(summary?.[2] ?? 0), fail: Number(summary?.[3] ?? (status === 0 ? 0 : 1)) };
}

/** The declarative scenarios, one folder each, run by Kyverno's chainsaw. */
export const CHAINSAW_DIR = 'test/e2e/chainsaw';

/** The operations of chainsaw's JSON report (--report-format JSON), by scenario. */
interface ChainsawReport {
  tests?: Array<{
    name: string;
    steps?: Array<{ name?: string; operations?: Array<{ name?: string; failure?: { error: string } }> }>;
  }>;
}

/**
 * Runs chainsaw on `dirs` against the e2e API server as the cluster admin. Its commands find the
 * same kubectl the stories drive (first on PATH); each operation counts as one check.
 */
export async function runChainsaw(
  state: Pick<E2eState, 'dir' | 'kubectl' | 'binDir' | 'adminKubeconfig'>,
  dirs: string[],
): Promise<Outcome> {
  const kubectlDir = join(state.dir, 'chainsaw-path');
  await mkdir(kubectlDir, { recursive: true });
  if (!existsSync(join(kubectlDir, 'kubectl'))) await symlink(state.kubectl, join(kubectlDir, 'kubectl'));
  const reportName = 'chainsaw-report';
  say(`running chainsaw on ${dirs.join(', ')}`);
  const status = await new Promise<number>((resolve) => {
    const chainsaw = spawn(
      join(state.binDir, 'chainsaw'),
      [
        'test',
        '--config',
        repoPath(`${CHAINSAW_DIR}/.chainsaw.yaml`),
        ...dirs.flatMap((dir) => ['--test-dir', repoPath(dir)]),
        '--report-format',
        'JSON',
        '--report-path',
        state.dir,
        '--report-name',
        reportName,
        '--no-color',
      ],
      {
        cwd: repoRoot,
        stdio: 'inherit',
        env: {
          ...process.env,
          KUBECONFIG: state.adminKubeconfig,
          PATH: [kubectlDir, state.binDir, process.env.PATH].join(delimiter),
        },
      },
    );
    chainsaw.on('error', (error) => {
      say(`chainsaw did not start: ${error.message}`);
      resolve(1);
    });
    chainsaw.on('exit', (code) => resolve(code ?? 1));
  });
  const reportFile = join(state.dir, `${reportName}.json`);
  if (!existsSync(reportFile)) return { status: status || 1, pass: 0, fail: 1 };
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as ChainsawReport;
  let pass = 0;
  let fail = 0;
  for (const test of report.tests ?? []) {
    const failures = (test.steps ?? []).flatMap((step) =>
      (step.operations ?? []).filter((o) => o.failure).map((o) => `${step.name}: ${o.failure?.error}`),
    );
    const operations = (test.steps ?? []).reduce((n, step) => n + (step.operations?.length ?? 0), 0);
    fail += failures.length;
    pass += operations - failures.length;
    say(`chainsaw ${failures.length === 0 ? 'ok' : 'not ok'} - ${test.name} (${operations} operations)`);
    for (const failure of failures) say(`  ${failure}`);
  }
  // A failing run with no failed operation (a file chainsaw could not load, say) still fails.
  if (status !== 0 && fail === 0) fail = 1;
  return { status, pass, fail };
}

interface RegisteredWebhook {
  name: string;
  clientConfig: { url: string };
  namespaceSelector?: unknown;
}

/**
 * sts-guard's rendered registration (renderWebhooks' output) re-pointed at another webhook server:
 * the same rules, matchConditions, failure policies and timeouts, StatefulSet webhooks only,
 * named `<prefix>-<name>`, called for `namespace` alone. The e2e latency story and the peers bench
 * set a bare webhook beside sts-guard this way.
 */
export function registrationFor(
  webhooksYaml: string,
  o: { prefix: string; fromUrl: string; toUrl: string; namespace: string },
): string {
  const configs = parseAllDocuments(webhooksYaml).map(
    (d) => d.toJS() as KubernetesObject & { webhooks: RegisteredWebhook[] },
  );
  return configs
    .map((config) => ({
      ...config,
      metadata: { name: `${o.prefix}-${config.metadata?.name}` },
      webhooks: config.webhooks
        .filter((w) => !w.name.startsWith('services.'))
        .map((w) => ({
          ...w,
          name: `${o.prefix}-${w.name}`,
          clientConfig: { ...w.clientConfig, url: w.clientConfig.url.replace(o.fromUrl, o.toUrl) },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': o.namespace } },
        })),
    }))
    .map((o) => stringify(o))
    .join('---\n');
}
