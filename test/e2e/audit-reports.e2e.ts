/**
 * The background audit against the real control plane, as its own ServiceAccount with deploy/audit's
 * RBAC: objects created where sts-guard is never called (namespaces labelled sts-guard.io/exempt)
 * get reports within one rescan; with neither report CRD it runs on with metrics only; it writes
 * PolicyReports where only wgpolicyk8s.io is served and moves to OpenReports once installed; the
 * fix from a report's message removes the report (or leaves pass results when those are on); an
 * exception turns the result into skip; deleting the object removes its report through the
 * controller manager's garbage collector; `sts-guard audit` reports the same from the command line.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { processAlive } from '../support/processes.js';
import { repoPath } from '../support/repo.js';
import { eventually } from '../support/wait.js';
import {
  type AuditProcess,
  applyAuditRbac,
  auditCli,
  auditGet,
  auditKubeconfig,
  auditMetrics,
  getReport,
  installCrds,
  logLines,
  OPENREPORTS_CRDS,
  removeCrds,
  startAudit,
  stopAudit,
  uidOf,
  WGPOLICY_CRDS,
} from './support/audit.js';
import { freshNamespace, kubectl, kubectlOk, loadState, metricSum, scenario } from './support/env.js';

const state = loadState();
const NS = { plain: 'audit-plain', routing: 'audit-routing', waived: 'audit-waived' };
const EXEMPT = { 'sts-guard.io/exempt': 'true' };

interface Result {
  rule: string;
  result: string;
  message: string;
  severity: string;
  category: string;
  source: string;
  policy: string;
  properties: Record<string, string>;
}
interface StoredReport {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels: Record<string, string>; ownerReferences: Array<Record<string, string>> };
  source?: string;
  scope: Record<string, string>;
  summary: Record<string, number>;
  results: Result[];
}
// The version sts-guard writes, named: kubectl would otherwise read PolicyReports as v1beta1.
const REPORT = 'reports.v1alpha1.openreports.io';
const POLICY_REPORT = 'policyreports.v1alpha2.wgpolicyk8s.io';

const exceptionsDir = join(state.dir, 'audit-exceptions');
mkdirSync(exceptionsDir, { recursive: true });
const exceptionsFile = join(exceptionsDir, 'exceptions.yaml');
/** As the kubelet updates a mounted ConfigMap: a new file renamed into place. */
function writeExceptions(body: string) {
  writeFileSync(`${exceptionsFile}.new`, body);
  renameSync(`${exceptionsFile}.new`, exceptionsFile);
}
writeExceptions('apiVersion: sts-guard.io/v1\nkind: ExceptionList\nexceptions: []\n');

await applyAuditRbac(state);
const kubeconfig = await auditKubeconfig(state);
const env = { KUBECONFIG: kubeconfig, EXCEPTIONS_FILE: exceptionsFile };
let audit: AuditProcess | undefined;
t.teardown(async () => {
  if (audit) await stopAudit(audit);
});

/** `kubectl auth can-i` as a ServiceAccount of sts-guard's namespace. */
const can = async (serviceAccount: string, ...args: string[]) =>
  (
    await kubectl(state, ['auth', 'can-i', ...args, `--as=system:serviceaccount:sts-guard:${serviceAccount}`])
  ).stdout.trim();

const rulesOf = (report: StoredReport | undefined) => report?.results.map((r) => [r.rule, r.result]);

/** Waits until the report of `uid` in `namespace` satisfies `ready`, and returns it. */
const reportWhen = (
  resource: string,
  namespace: string,
  uid: string,
  what: string,
  ready: (r: StoredReport) => boolean,
) =>
  eventually(
    `${resource} ${namespace}/${uid}: ${what}`,
    async () => {
      const report = await getReport<StoredReport>(state, resource, namespace, uid);
      return report && ready(report) ? report : undefined;
    },
    30_000,
  );

const gone = (resource: string, namespace: string, uid: string, what: string) =>
  eventually(
    `${resource} ${namespace}/${uid} to be gone: ${what}`,
    async () => ((await getReport(state, resource, namespace, uid)) === undefined ? true : undefined),
    60_000,
  );

t.test(
  "deploy/audit's RBAC: read StatefulSets and Services, write only its reports and its Lease",
  async (t) => {
    const dryRun = await kubectl(state, ['apply', '--dry-run=server', '-k', repoPath('deploy/audit')]);
    t.equal(dryRun.code, 0, 'kubectl apply -k deploy/audit is accepted whole', { stderr: dryRun.stderr });
    t.match(dryRun.stdout, 'deployment.apps/sts-guard-audit');
    const audit = (...args: string[]) => can('sts-guard-audit', ...args);
    t.equal(await audit('watch', 'statefulsets.apps', '-A'), 'yes');
    t.equal(await audit('list', 'services', '-A'), 'yes');
    t.equal(await audit('update', 'leases.coordination.k8s.io/sts-guard-audit', '-n', 'sts-guard'), 'yes');
    t.equal(
      await audit('update', 'leases.coordination.k8s.io/other', '-n', 'sts-guard'),
      'no',
      'only its own Lease',
    );
    t.equal(
      await audit('create', 'leases.coordination.k8s.io', '-n', 'default'),
      'no',
      'only in its namespace',
    );
    t.equal(await audit('update', 'statefulsets.apps', '-A'), 'no', 'no writes to workloads');
    t.equal(await audit('get', 'secrets', '-A'), 'no', 'no Secrets');
    // The report kinds are asked about once their CRDs are installed (can-i resolves them by discovery).
  },
);

t.test('with neither report CRD: one log line, metrics only, nothing crashes', async (t) => {
  // (Installed by an earlier story or run, if at all. A CRD deleted within moments of its creation
  // can stick in Terminating: kube-apiserver's CRD finalizer meets "storage is (re)initializing".)
  await removeCrds(state, OPENREPORTS_CRDS);
  await removeCrds(state, WGPOLICY_CRDS);
  // Namespaces the webhook configurations exclude: these objects are never reviewed at admission.
  for (const ns of Object.values(NS)) await freshNamespace(state, ns, EXEMPT);
  await kubectlOk(state, ['apply', '-n', NS.plain, '-f', scenario('audit-without-replset')]);
  await kubectlOk(state, ['apply', '-n', NS.waived, '-f', scenario('audit-without-replset')]);
  await kubectlOk(state, ['apply', '-n', NS.routing, '-f', scenario('seed-clusterip-service')]);

  audit = await startAudit(state, 'audit-a', env);
  const started = audit;
  const metrics = await eventually('the first full scan', async () => {
    const text = await auditMetrics(started);
    return metricSum(text, 'sts_guard_audit_last_full_scan_timestamp_seconds') > 0 ? text : undefined;
  });
  t.equal(metricSum(metrics, 'sts_guard_audit_report_api', { api: 'none' }), 1, 'report API: none');
  // At least these namespaces' findings (other stories' objects may be in the cluster too).
  const findings = (rule: string, result: string) =>
    metricSum(metrics, 'sts_guard_audit_findings', { rule, result });
  t.ok(findings('replica-set', 'fail') >= 2, 'two StatefulSets without --replSet');
  t.ok(findings('headless-service', 'fail') >= 1, 'one behind a ClusterIP Service');
  t.ok(findings('client-routing', 'warn') >= 1, 'and that Service balancing over its pods');
  t.equal(metricSum(metrics, 'sts_guard_audit_reports_written_total'), 0, 'nothing written');
  // Discovery runs every 2 s here: three more rounds find nothing new to say.
  await sleep(6_000);
  t.equal(logLines(started, 'neither openreports.io/v1alpha1').length, 1, 'said once in the log');
  t.ok(processAlive(started.pid), 'still running');
  t.equal((await auditGet(started, '/readyz')).status, 200, 'and ready');
});

let stsUid = '';
t.test(
  'only wgpolicyk8s.io served: a PolicyReport per object with findings, within one rescan',
  async (t) => {
    await installCrds(state, WGPOLICY_CRDS);
    stsUid = await uidOf(state, 'statefulset', NS.plain, 'mongodb');
    const report = await reportWhen(
      POLICY_REPORT,
      NS.plain,
      stsUid,
      'replica-set fail',
      (r) => r.results.length > 0,
    );
    t.equal(report.apiVersion, 'wgpolicyk8s.io/v1alpha2');
    t.equal(
      await can('sts-guard-audit', 'delete', 'policyreports.wgpolicyk8s.io', '-n', 'any'),
      'yes',
      'its RBAC',
    );
    t.same(rulesOf(report), [['replica-set', 'fail']]);
    t.same(report.scope, {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      namespace: NS.plain,
      name: 'mongodb',
      uid: stsUid,
    });
    t.same(report.metadata.ownerReferences, [
      { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'mongodb', uid: stsUid },
    ]);
    t.same(report.summary, { pass: 0, fail: 1, warn: 0, error: 0, skip: 0 });
    t.match(report.results[0], {
      source: 'sts-guard',
      policy: 'sts-guard',
      severity: 'high',
      category: 'Replication',
      properties: { admission: 'deny', engine: 'mongodb' },
    });
    t.match(report.results[0]?.message, 'starts MongoDB without --replSet');

    const routed = await uidOf(state, 'statefulset', NS.routing, 'mongodb');
    const service = await uidOf(state, 'service', NS.routing, 'mongodb');
    const onStatefulSet = await reportWhen(POLICY_REPORT, NS.routing, routed, 'written', () => true);
    t.same(rulesOf(onStatefulSet), [
      ['headless-service', 'fail'],
      ['member-count', 'warn'],
    ]);
    const onService = await reportWhen(POLICY_REPORT, NS.routing, service, 'written', () => true);
    t.same(rulesOf(onService), [['client-routing', 'warn']]);
    t.equal(onService.scope.kind, 'Service');
    t.match(onService.results[0]?.message, 'mongodb+srv://mongodb.audit-routing.svc.cluster.local');
  },
);

t.test('OpenReports installed beside it: preferred, and the PolicyReports removed', async (t) => {
  await installCrds(state, OPENREPORTS_CRDS);
  const report = await reportWhen(REPORT, NS.plain, stsUid, 'written', () => true);
  t.equal(report.apiVersion, 'openreports.io/v1alpha1');
  t.equal(report.source, 'sts-guard', 'the report-level source OpenReports has');
  t.equal(await can('sts-guard-audit', 'create', 'reports.openreports.io', '-n', 'any'), 'yes', 'its RBAC');
  t.equal(
    await can('sts-guard', 'create', 'reports.openreports.io', '-n', 'any'),
    'no',
    "the webhook's ServiceAccount stays read-only",
  );
  t.same(report.metadata.labels, { 'app.kubernetes.io/managed-by': 'sts-guard' });
  t.same(rulesOf(report), [['replica-set', 'fail']]);
  t.match(
    report.results[0]?.properties.fix,
    'args: ["--replSet","rs0","--bind_ip_all"]',
    'stored whole, nothing pruned',
  );
  await gone(POLICY_REPORT, NS.plain, stsUid, 'sts-guard deletes the reports of the API it left');
  const wgpolicy = await kubectlOk(state, [
    'get',
    POLICY_REPORT,
    '-A',
    '-l',
    'app.kubernetes.io/managed-by=sts-guard',
    '-o',
    'name',
  ]);
  t.equal(wgpolicy.trim(), '', 'none of its PolicyReports are left');
});

t.test("applying the fix from the report's message: no report any more", async (t) => {
  const report = await reportWhen(REPORT, NS.plain, stsUid, 'written', () => true);
  // "set the args of container "mongodb" to: args: [...]", exactly as the report gives it.
  const fix = report.results[0]?.properties.fix ?? '';
  const args = JSON.parse(/args: (\[.*\])/.exec(fix)?.[1] ?? 'null') as string[];
  t.same(args, ['--replSet', 'rs0', '--bind_ip_all']);
  const deletedBefore = metricSum(
    await auditMetrics(audit as AuditProcess),
    'sts_guard_audit_reports_deleted_total',
  );
  await kubectlOk(state, [
    'patch',
    'statefulset',
    'mongodb',
    '-n',
    NS.plain,
    '-p',
    JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'mongodb', args }] } } } }),
  ]);
  await gone(REPORT, NS.plain, stsUid, 'compliant now');
  t.ok(
    metricSum(await auditMetrics(audit as AuditProcess), 'sts_guard_audit_reports_deleted_total') >
      deletedBefore,
    'deleted by the audit',
  );
});

t.test('with AUDIT_PASS_RESULTS=on the fixed StatefulSet reports pass for each rule', async (t) => {
  if (audit) await stopAudit(audit);
  audit = await startAudit(state, 'audit-a', { ...env, AUDIT_PASS_RESULTS: 'on' });
  const report = await reportWhen(REPORT, NS.plain, stsUid, 'pass results', (r) => (r.summary.pass ?? 0) > 0);
  t.same(rulesOf(report), [
    ['replica-set', 'pass'],
    ['headless-service', 'pass'],
    ['client-routing', 'pass'],
  ]);
  t.same(report.summary, { pass: 3, fail: 0, warn: 0, error: 0, skip: 0 });
  await stopAudit(audit);
  audit = await startAudit(state, 'audit-a', env);
  await gone(REPORT, NS.plain, stsUid, 'pass results off again: no report');
});

t.test('an exception turns the result into skip, with its reason', async (t) => {
  const uid = await uidOf(state, 'statefulset', NS.waived, 'mongodb');
  await reportWhen(REPORT, NS.waived, uid, 'replica-set fail', (r) => r.results[0]?.result === 'fail');
  writeExceptions(`apiVersion: sts-guard.io/v1
kind: ExceptionList
exceptions:
  - name: legacy-audit-db
    reason: "AUDIT-7: standalone until the move to the operator"
    rules: [replica-set]
    match:
      namespaces: [${NS.waived}]
      names: [mongodb]
`);
  const report = await reportWhen(REPORT, NS.waived, uid, 'skip', (r) => r.results[0]?.result === 'skip');
  t.same(rulesOf(report), [['replica-set', 'skip']]);
  t.match(report.results[0]?.properties, {
    admission: 'waived',
    exception: 'legacy-audit-db',
    exceptionReason: 'AUDIT-7: standalone until the move to the operator',
  });
  t.same(report.summary, { pass: 0, fail: 0, warn: 0, error: 0, skip: 1 });
});

t.test('a report someone else changed meanwhile: the update conflicts, is retried, and wins', async (t) => {
  const uid = await uidOf(state, 'statefulset', NS.waived, 'mongodb');
  // Another writer (a person, a policy UI) touches the report: the audit's copy is now stale.
  await kubectlOk(state, ['annotate', REPORT, uid, '-n', NS.waived, 'example.com/reviewed=yes']);
  const conflictsBefore = logLines(audit as AuditProcess, '"conflicts":1').length;
  await kubectlOk(state, ['scale', 'statefulset', 'mongodb', '-n', NS.waived, '--replicas=5']);
  const report = await reportWhen(REPORT, NS.waived, uid, 'the new member count', (r) =>
    Boolean(r.results[0]?.message.includes('each of the 5 pods')),
  );
  t.same(rulesOf(report), [['replica-set', 'skip']], 'still waived');
  t.ok(
    logLines(audit as AuditProcess, '"conflicts":1').length > conflictsBefore,
    'the write met the conflict (409) and was retried with the stored resourceVersion',
  );
});

t.test('sts-guard audit reports the same, as the audit ServiceAccount, page by page', async (t) => {
  const json = await auditCli(kubeconfig, ['-A', '--chunk-size', '1', '-o', 'json']);
  t.equal(json.code, 1, 'exit 1: a stored object would be denied', { stderr: json.stderr });
  const document = JSON.parse(json.stdout) as {
    allowed: boolean;
    objects: Array<{
      kind: string;
      namespace: string;
      name: string;
      allowed: boolean;
      findings: Array<{ rule: string; result: string }>;
    }>;
  };
  const find = (ns: string, kind = 'StatefulSet') =>
    document.objects.find((o) => o.namespace === ns && o.kind === kind);
  t.same(
    find(NS.waived)?.findings.map((f) => [f.rule, f.result]),
    [['replica-set', 'fail']],
    'no --exceptions: the rule applies',
  );
  t.same(
    find(NS.routing)?.findings.map((f) => [f.rule, f.result]),
    [
      ['headless-service', 'fail'],
      ['member-count', 'warn'],
    ],
  );
  t.same(
    find(NS.routing, 'Service')?.findings.map((f) => [f.rule, f.result]),
    [['client-routing', 'warn']],
  );
  t.same(find(NS.plain)?.findings, [], 'the fixed one: no finding');

  const waived = await auditCli(kubeconfig, ['-n', NS.waived, '--exceptions', exceptionsFile]);
  t.equal(waived.code, 0, 'with the exception: nothing denied', { stderr: waived.stderr });
  t.match(waived.stdout, /replica-set\s+waived\s+container "mongodb" starts MongoDB without --replSet/);
  t.match(waived.stdout, 'rule replica-set: 1 skip');
  t.match(waived.stdout, '1 database StatefulSet audited: 1 admitted, 0 denied');
});

t.test(
  "deleting the object removes its report through the controller manager's garbage collector",
  async (t) => {
    const statefulSet = await uidOf(state, 'statefulset', NS.routing, 'mongodb');
    const service = await uidOf(state, 'service', NS.routing, 'mongodb');
    t.ok(
      await reportWhen(REPORT, NS.routing, statefulSet, 'written', () => true),
      'the StatefulSet has a report',
    );
    t.ok(await reportWhen(REPORT, NS.routing, service, 'written', () => true), 'the Service has a report');
    // With the audit stopped, only the garbage collector can remove them.
    if (audit) await stopAudit(audit);
    t.notOk(audit && processAlive(audit.pid), 'the audit is not running');
    audit = undefined;
    await kubectlOk(state, ['delete', 'statefulset', 'mongodb', '-n', NS.routing]);
    await kubectlOk(state, ['delete', 'service', 'mongodb', '-n', NS.routing]);
    await gone(REPORT, NS.routing, statefulSet, 'its StatefulSet was deleted');
    await gone(REPORT, NS.routing, service, 'its Service was deleted');
    t.equal(
      await getReport(state, REPORT, NS.routing, statefulSet),
      undefined,
      "the StatefulSet's report is gone",
    );
    t.equal(await getReport(state, REPORT, NS.routing, service), undefined, "the Service's report is gone");
  },
);

t.test('sts-guard audit --write-reports writes what the in-cluster audit would', async (t) => {
  await kubectlOk(state, ['apply', '-n', NS.routing, '-f', scenario('seed-clusterip-service')]);
  const uid = await uidOf(state, 'statefulset', NS.routing, 'mongodb');
  const written = await auditCli(kubeconfig, ['-n', NS.routing, '--write-reports']);
  t.equal(written.code, 1, 'exit 1: headless-service would deny', { stderr: written.stderr });
  t.match(written.stdout, 'Reports (openreports.io/v1alpha1): 2 created, 0 updated, 0 deleted, 0 unchanged.');
  const report = await getReport<StoredReport>(state, REPORT, NS.routing, uid);
  t.same(rulesOf(report), [
    ['headless-service', 'fail'],
    ['member-count', 'warn'],
  ]);
  const again = await auditCli(kubeconfig, ['-n', NS.routing, '--write-reports']);
  t.match(again.stdout, '0 created, 0 updated, 0 deleted, 2 unchanged', 'a second run writes nothing');
});
