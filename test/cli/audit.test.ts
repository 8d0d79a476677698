import { rm } from 'node:fs/promises';
import t from 'tap';
import {
  auditService,
  auditStatefulSet,
  heldDirectories,
  indexByNamespace,
} from '../../src/audit/evaluate.js';
import { objectCheck } from '../../src/cli/audit.js';
import { type AuditReport, formatAuditJson, formatAuditTable } from '../../src/cli/format.js';
import { LocalApiServer } from '../support/apiserver.js';
import { defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { ensureBuilt, runCli, tempDir, writeManifest, yamlDocuments } from './cli.js';

/**
 * `sts-guard audit` at the command line: its usage and errors here; its verdicts on a live cluster
 * are proven against the real API server in test/e2e/audit-reports.e2e.ts.
 */

await ensureBuilt();
const dir = await tempDir();
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('the top-level help lists audit beside check', async (t) => {
  const run = await runCli(['--help']);
  t.equal(run.code, 0);
  t.match(run.stdout, /\n {2}audit {3}judge what a live cluster already runs/);
});

t.test('audit --help (either order) prints its own usage', async (t) => {
  for (const args of [
    ['audit', '--help'],
    ['--help', 'audit'],
  ]) {
    const run = await runCli(args);
    t.equal(run.code, 0, args.join(' '));
    t.match(run.stdout, 'Usage: sts-guard audit [options]');
    t.match(run.stdout, '--write-reports');
  }
});

t.test('bad usage is exit 2 with a pointer to audit --help', async (t) => {
  const cases: Array<[string[], string]> = [
    [['audit', 'manifests/'], 'audit takes no inputs (it reads the cluster), not "manifests/"'],
    [['audit', '-n', 'a', '-A'], '--namespace and --all-namespaces exclude each other'],
    [['audit', '--chunk-size', '0'], '--chunk-size must be a whole number above 0, not "0"'],
    [['audit', '-o', 'yaml'], '--output must be table or json, not "yaml"'],
    [['audit', '--show-mutation'], "Unknown option '--show-mutation'"],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(args);
    t.equal(run.code, 2, args.join(' '));
    t.match(run.stderr, message);
    t.match(run.stderr, 'Run "sts-guard audit --help" for usage.');
    t.equal(run.stdout, '', 'nothing on stdout');
  }
});

t.test('no cluster configured: exit 2 saying where it looked', async (t) => {
  const run = await runCli(['audit'], { env: { HOME: dir } });
  t.equal(run.code, 2);
  t.match(
    run.stderr,
    'cannot audit: no Kubernetes configuration found (not in a pod; no KUBECONFIG or ~/.kube/config)',
  );
});

t.test('a cluster that refuses the LIST (403): exit 2 naming the permission', async (t) => {
  // The stand-in API server: the real one is not made to refuse on cue here (e2e grants the RBAC).
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  api.misbehaviour = { kind: 'status', code: 403 };
  const kubeconfig = await writeManifest(
    dir,
    'kubeconfig',
    `apiVersion: v1
kind: Config
clusters: [{ name: local, cluster: { server: "${api.url}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: local, context: { cluster: local, user: u } }]
current-context: local
`,
  );
  const run = await runCli(['audit', '-n', 'grade-submission'], { env: { KUBECONFIG: kubeconfig } });
  t.equal(run.code, 2);
  t.match(run.stderr, /cannot list (statefulsets|services): the Kubernetes API answered HTTP 403/);
  t.match(run.stderr, /check the kubeconfig identity's RBAC: list (statefulsets|services)/);
});

t.test('the table: a row per finding naming its rule, a line per rule, and the summary', async (t) => {
  const members = {
    ...replicaSet({ name: 'orders' }),
    metadata: { name: 'orders', namespace: 'shop', uid: 'u1' },
  };
  const standalone = {
    ...statefulSet({ replicas: 4, serviceName: 'mongodb' }),
    metadata: { name: 'mongodb', namespace: 'shop', uid: 'u2' },
  };
  const headless = {
    ...service('orders-headless', 'shop'),
    spec: { ...service('orders-headless', 'shop').spec, selector: { 'app.kubernetes.io/name': 'orders' } },
  };
  const balancer = {
    ...service('orders', 'shop', '10.96.0.7'),
    metadata: { name: 'orders', namespace: 'shop', uid: 'u3' },
  };
  balancer.spec = { ...balancer.spec, selector: { 'app.kubernetes.io/name': 'orders' } };
  members.spec = {
    ...members.spec,
    serviceName: 'orders-headless',
    selector: members.spec?.selector ?? {},
    template: members.spec?.template ?? {},
  };
  const ctx = {
    settings: defaultSettings(),
    ...heldDirectories(indexByNamespace([members, standalone]), indexByNamespace([headless, balancer])),
  };
  const audited = [
    await auditStatefulSet(standalone, ctx),
    await auditStatefulSet(members, ctx),
    await auditService(balancer, ctx),
  ];
  const report: AuditReport = { objects: audited.map(objectCheck), statefulSetsListed: 3, servicesListed: 2 };
  const table = formatAuditTable(report);
  t.match(
    table,
    /StatefulSet shop\/mongodb\s+replica-set\s+denied\s+container "mongodb" starts MongoDB without --replSet/,
  );
  t.match(
    table,
    /\s+member-count\s+warning\s+4 replicas survive 1 member failure/,
    'an advisory names its rule',
  );
  t.match(table, /StatefulSet shop\/orders\s+-\s+admitted\s+a CREATE of it today would be admitted/);
  t.match(table, /Service shop\/orders\s+-\s+admitted/);
  t.match(
    table,
    /\s+client-routing\s+warning\s+it load-balances over the pods of StatefulSet "shop\/orders"/,
  );
  t.match(
    table,
    'rule replica-set: 1 fail\nrule headless-service: 1 fail\nrule client-routing: 2 warn\nrule member-count: 1 warn',
  );
  t.match(
    table,
    '2 database StatefulSets audited: 1 admitted, 1 denied; 1 of 2 Services with findings; 1 other StatefulSet with nothing to check.',
  );

  const json = JSON.parse(formatAuditJson(report)) as {
    allowed: boolean;
    summary: Record<string, unknown>;
    objects: Array<{
      kind: string;
      name: string;
      findings: Array<{ rule: string; result: string; outcome: string }>;
    }>;
  };
  t.equal(json.allowed, false);
  t.match(json.summary, {
    statefulSets: 2,
    admitted: 1,
    denied: 1,
    passedThrough: 1,
    services: 2,
    servicesWithFindings: 1,
    rules: { 'replica-set': { fail: 1 }, 'client-routing': { warn: 2 } },
  });
  t.same(
    json.objects.find((o) => o.name === 'mongodb')?.findings.map((f) => [f.rule, f.result, f.outcome]),
    [
      ['replica-set', 'fail', 'deny'],
      ['headless-service', 'fail', 'deny'],
      ['member-count', 'warn', 'warn'],
    ],
  );
});

t.test(
  'check --output json carries the same findings array and per-rule counts (fields only added)',
  async (t) => {
    const file = await writeManifest(
      dir,
      'denied.yaml',
      yamlDocuments(statefulSet({ replicas: 3 }), service('mongodb-headless')),
    );
    const run = await runCli(['check', '-o', 'json', file]);
    t.equal(run.code, 1);
    const document = JSON.parse(run.stdout) as {
      summary: { rules: Record<string, Record<string, number>> };
      objects: Array<{ findings: Array<{ rule: string; result: string }>; violations: unknown[] }>;
    };
    t.same(
      document.objects[0]?.findings.map((f) => [f.rule, f.result]),
      [['replica-set', 'fail']],
    );
    t.equal(document.objects[0]?.violations.length, 1, 'violations stay as they were');
    t.same(document.summary.rules['replica-set'], { fail: 1, error: 0, warn: 0, skip: 0 });
  },
);
