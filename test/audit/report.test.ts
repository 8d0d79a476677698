import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import {
  type AuditedObject,
  auditService,
  auditStatefulSet,
  heldDirectories,
  indexByNamespace,
} from '../../src/audit/evaluate.js';
import {
  buildReport,
  MANAGED_BY_LABEL,
  OPENREPORTS,
  type PolicyReport,
  planChanged,
  planReports,
  reportKey,
  TRUNCATED_ANNOTATION,
  WGPOLICY,
} from '../../src/audit/report.js';
import { timestampOf } from '../../src/audit/results.js';
import type { ConfigMapDirectory, ReviewContext } from '../../src/pipeline/ports.js';
import type { ExceptionList, PolicySettings } from '../../src/policy/index.js';
import { defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';

/**
 * From stored objects to the reports the audit writes, with nothing in between mocked: the
 * objects go through the pipeline (src/audit/evaluate.ts), their findings become results and
 * reports (src/audit/report.ts), and a plan says what to write. Pure, so every case is exact.
 */

const NOW = timestampOf(Date.UTC(2026, 11, 3, 12, 0, 0, 250));
const LATER = timestampOf(Date.UTC(2026, 11, 3, 13, 0, 0));
const options = { passResults: false, maxResults: 50, now: NOW };

/** A stored object: the API server gave it a UID. */
function stored<T extends V1StatefulSet | V1Service>(object: T, uid: string): T {
  return { ...object, metadata: { ...object.metadata, uid, resourceVersion: '1' } };
}

interface Cluster {
  statefulSets?: V1StatefulSet[];
  services?: V1Service[];
  settings?: PolicySettings;
  exceptions?: ExceptionList;
  configMaps?: ConfigMapDirectory;
}

function contextOf(cluster: Cluster): ReviewContext {
  const exceptions = cluster.exceptions;
  return {
    settings: cluster.settings ?? defaultSettings(),
    ...heldDirectories(
      indexByNamespace(cluster.statefulSets ?? []),
      indexByNamespace(cluster.services ?? []),
    ),
    configMaps: cluster.configMaps,
    exceptions: exceptions ? { current: () => exceptions } : undefined,
  };
}

const auditOne = (sts: V1StatefulSet, cluster: Cluster) =>
  auditStatefulSet(sts, contextOf({ ...cluster, statefulSets: [sts, ...(cluster.statefulSets ?? [])] }));

const withoutReplSet = stored(statefulSet({ replicas: 3, serviceName: 'mongodb' }), 'uid-sts-1');
const clusterIp = stored(service('mongodb', 'grade-submission', '10.96.0.12'), 'uid-svc-1');
const headless = stored(service('mongodb-headless'), 'uid-svc-2');

t.test('a MongoDB without --replSet behind a ClusterIP Service: one report, two fail results', async (t) => {
  const audited = await auditOne(withoutReplSet, { services: [clusterIp] });
  const built = buildReport(OPENREPORTS, audited, options);
  if (!built) throw new Error('expected a report');
  const { report } = built;
  t.equal(report.apiVersion, 'openreports.io/v1alpha1');
  t.equal(report.kind, 'Report');
  t.equal(report.metadata.name, 'uid-sts-1', 'named by the object UID');
  t.equal(report.metadata.namespace, 'grade-submission');
  t.same(report.metadata.labels, { [MANAGED_BY_LABEL]: 'sts-guard' });
  t.same(
    report.metadata.ownerReferences,
    [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'mongodb', uid: 'uid-sts-1' }],
    'owned by the StatefulSet, so the garbage collector deletes it with it',
  );
  t.same(report.scope, {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    namespace: 'grade-submission',
    name: 'mongodb',
    uid: 'uid-sts-1',
  });
  t.equal(report.source, 'sts-guard');
  t.same(report.summary, { pass: 0, fail: 2, warn: 0, error: 0, skip: 0 });
  t.same(
    report.results.map((r) => [r.policy, r.rule, r.result, r.severity, r.category]),
    [
      ['sts-guard', 'replica-set', 'fail', 'high', 'Replication'],
      ['sts-guard', 'headless-service', 'fail', 'high', 'Replication'],
    ],
  );
  const [replica, headlessResult] = report.results;
  t.match(
    replica?.message,
    'starts MongoDB without --replSet, so each of the 3 pods keeps its own, different data',
  );
  t.match(replica?.properties, { admission: 'deny', engine: 'mongodb' });
  t.match(
    replica?.properties.fix,
    'args: ["--replSet","rs0","--bind_ip_all"]',
    'the fix travels in properties',
  );
  t.match(headlessResult?.properties.fix, 'clusterIP cannot be changed in place');
  t.same(replica?.timestamp, { seconds: 1796299200, nanos: 250_000_000 });
  t.equal(built.truncated, 0);
  t.same(
    audited.decision.findings.map((f) => f.problem),
    report.results.map((r) => r.message),
    "each result's message is the pipeline's finding",
  );
});

t.test('the same findings as a wgpolicyk8s.io/v1alpha2 PolicyReport: no report-level source', async (t) => {
  const audited = await auditOne(withoutReplSet, { services: [clusterIp] });
  const report = buildReport(WGPOLICY, audited, options)?.report;
  t.equal(report?.apiVersion, 'wgpolicyk8s.io/v1alpha2');
  t.equal(report?.kind, 'PolicyReport');
  t.notOk('source' in (report ?? {}), 'v1alpha2 has no report-level source; the API server would prune it');
  t.equal(report?.results[0]?.source, 'sts-guard', 'each result names its source');
});

t.test(
  'a compliant replica set has no report; with pass results on, one pass per rule evaluated',
  async (t) => {
    const compliant = stored(replicaSet(), 'uid-sts-2');
    const audited = await auditOne(compliant, { services: [headless] });
    t.same(audited.decision.findings, [], 'no finding');
    t.equal(
      buildReport(OPENREPORTS, audited, options),
      undefined,
      'no report: compliant objects cost etcd nothing',
    );
    const passing = buildReport(OPENREPORTS, audited, { ...options, passResults: true })?.report;
    t.same(
      passing?.results.map((r) => [r.rule, r.result]),
      [
        ['replica-set', 'pass'],
        ['headless-service', 'pass'],
        ['client-routing', 'pass'],
      ],
    );
    t.same(passing?.summary, { pass: 3, fail: 0, warn: 0, error: 0, skip: 0 });
  },
);

t.test('what sts-guard does not judge gets no report, pass results or not', async (t) => {
  const nginx = stored(statefulSet({ image: 'nginx:1.27', replicas: 2 }), 'uid-web');
  const single = stored(statefulSet({ replicas: 1 }), 'uid-single');
  for (const sts of [nginx, single]) {
    const audited = await auditOne(sts, {});
    t.same(audited.evaluated, [], `${sts.metadata?.uid}: no rule evaluated`);
    t.equal(buildReport(OPENREPORTS, audited, { ...options, passResults: true }), undefined);
  }
  const manifest = await auditOne(statefulSet({ replicas: 3 }), { services: [headless] });
  t.equal(
    buildReport(OPENREPORTS, manifest, options),
    undefined,
    'never stored, no UID: nothing to own a report',
  );
});

t.test('a waived rule is a skip result carrying the exception and its reason', async (t) => {
  const exceptions: ExceptionList = {
    exceptions: [
      {
        name: 'legacy-grade-db',
        reason: 'GRADE-42: standalone until the operator',
        rules: ['replica-set'],
        match: { names: ['mongodb'] },
      },
    ],
  };
  const audited = await auditOne(withoutReplSet, { services: [headless], exceptions });
  const report = buildReport(OPENREPORTS, audited, options)?.report;
  t.same(
    report?.results.map((r) => [r.rule, r.result]),
    [
      ['headless-service', 'fail'],
      ['replica-set', 'skip'],
    ],
    "worst first: the headless-service finding is not waived (serviceName 'mongodb' names no Service)",
  );
  const skip = report?.results.find((r) => r.result === 'skip');
  t.match(skip?.properties, {
    admission: 'waived',
    exception: 'legacy-grade-db',
    exceptionReason: 'GRADE-42: standalone until the operator',
  });
});

t.test('a finding a failed look-up caused is an error result, whatever the webhook would do', async (t) => {
  const configFile = stored(
    statefulSet({
      replicas: 3,
      args: ['--config', '/etc/mongod/mongod.conf'],
      container: { volumeMounts: [{ name: 'config', mountPath: '/etc/mongod' }] },
    }),
    'uid-conf',
  );
  configFile.spec = {
    ...configFile.spec,
    selector: configFile.spec?.selector ?? {},
    template: {
      ...configFile.spec?.template,
      spec: {
        ...configFile.spec?.template?.spec,
        containers: configFile.spec?.template?.spec?.containers ?? [],
        volumes: [{ name: 'config', configMap: { name: 'mongod-config' } }],
      },
    },
  };
  const unavailable: ConfigMapDirectory = {
    lookup: async () => ({ outcome: 'unavailable', reason: 'the Kubernetes API answered HTTP 403' }),
  };
  for (const lookupFailureMode of ['deny', 'warn'] as const) {
    const audited = await auditOne(configFile, {
      services: [headless],
      configMaps: unavailable,
      settings: { ...defaultSettings(), lookupFailureMode },
    });
    const result = buildReport(OPENREPORTS, audited, options)?.report.results[0];
    t.equal(result?.rule, 'replica-set', lookupFailureMode);
    t.equal(
      result?.result,
      'error',
      `${lookupFailureMode}: error, not ${lookupFailureMode === 'deny' ? 'fail' : 'warn'}`,
    );
    t.match(result?.message, 'HTTP 403');
    t.equal(result?.properties.unverified, 'true');
  }
});

t.test(
  'client-routing: the Service and the replica set it balances over each get a warn result',
  async (t) => {
    const members = stored(replicaSet(), 'uid-rs');
    const cluster = { statefulSets: [members], services: [headless, clusterIp] };
    const onStatefulSet = buildReport(
      OPENREPORTS,
      await auditStatefulSet(members, contextOf(cluster)),
      options,
    )?.report;
    const onService = buildReport(
      OPENREPORTS,
      await auditService(clusterIp, contextOf(cluster)),
      options,
    )?.report;
    t.same(
      onStatefulSet?.results.map((r) => [r.rule, r.result, r.severity, r.category]),
      [['client-routing', 'warn', 'medium', 'Client Routing']],
    );
    t.same(onService?.scope, {
      apiVersion: 'v1',
      kind: 'Service',
      namespace: 'grade-submission',
      name: 'mongodb',
      uid: 'uid-svc-1',
    });
    t.same(onService?.metadata.ownerReferences, [
      { apiVersion: 'v1', kind: 'Service', name: 'mongodb', uid: 'uid-svc-1' },
    ]);
    t.match(
      onService?.results[0]?.message,
      'mongodb+srv://mongodb-headless.grade-submission.svc.cluster.local',
    );
    const seedOnly = stored(
      {
        ...service('mongodb', 'grade-submission', '10.96.0.12'),
        metadata: {
          name: 'mongodb',
          namespace: 'grade-submission',
          annotations: { 'sts-guard.io/client-routing': 'seed-only' },
        },
      },
      'uid-svc-3',
    );
    const annotated = await auditService(seedOnly, contextOf({ ...cluster, services: [headless, seedOnly] }));
    t.equal(buildReport(OPENREPORTS, annotated, options), undefined, 'annotated seed-only: no report');
  },
);

t.test('AUDIT_MAX_RESULTS_PER_REPORT keeps the worst results and says how many it left out', async (t) => {
  const audited = await auditOne(stored(statefulSet({ replicas: 4, serviceName: 'mongodb' }), 'uid-many'), {
    services: [clusterIp],
  });
  t.equal(audited.decision.findings.length, 3, 'replica-set, headless-service, member-count');
  const built = buildReport(OPENREPORTS, audited, { ...options, maxResults: 2 });
  t.same(
    built?.report.results.map((r) => r.result),
    ['fail', 'fail'],
    'the two fails, not the warning',
  );
  t.equal(built?.truncated, 1);
  t.same(built?.report.metadata.annotations, { [TRUNCATED_ANNOTATION]: '1' });
  t.same(
    built?.report.summary,
    { pass: 0, fail: 2, warn: 0, error: 0, skip: 0 },
    'the summary counts what is written',
  );
});

/** A report as the API server returns it: with its resourceVersion. */
const asStored = (report: PolicyReport, resourceVersion: string): PolicyReport => ({
  ...report,
  metadata: { ...report.metadata, resourceVersion },
});

t.test(
  'planning: create what is new, keep what is unchanged, update what changed, delete what is gone',
  async (t) => {
    const failing = await auditOne(withoutReplSet, { services: [clusterIp] });
    const first = buildReport(OPENREPORTS, failing, options)?.report as PolicyReport;
    t.same(planReports([first], [], 10), {
      create: [first],
      update: [],
      delete: [],
      capped: 0,
      unchanged: 0,
    });

    const again = buildReport(OPENREPORTS, failing, { ...options, now: LATER })?.report as PolicyReport;
    const unchanged = planReports([again], [asStored(first, '7')], 10);
    t.same(
      unchanged,
      { create: [], update: [], delete: [], capped: 0, unchanged: 1 },
      'a later scan of the same findings writes nothing',
    );

    // The fix for one finding: serviceName now names the headless Service.
    const fixedService = stored(statefulSet({ replicas: 3, serviceName: 'mongodb-headless' }), 'uid-sts-1');
    const half = buildReport(OPENREPORTS, await auditOne(fixedService, { services: [headless] }), {
      ...options,
      now: LATER,
    })?.report as PolicyReport;
    const updated = planReports([half], [asStored(first, '7')], 10);
    t.equal(updated.update.length, 1);
    t.equal(updated.update[0]?.metadata.resourceVersion, '7', 'an update carries the stored resourceVersion');
    t.same(
      updated.update[0]?.results.map((r) => r.rule),
      ['replica-set'],
    );
    t.same(
      updated.update[0]?.results[0]?.timestamp,
      NOW,
      'a result found before keeps the time it was found',
    );

    const gone = planReports([], [asStored(first, '7')], 10);
    t.same(
      gone.delete.map(reportKey),
      ['grade-submission/uid-sts-1'],
      'no results any more: its report is deleted',
    );
  },
);

t.test('AUDIT_MAX_REPORTS keeps the worst reports and deletes the rest', async (t) => {
  const fail = buildReport(OPENREPORTS, await auditOne(withoutReplSet, { services: [clusterIp] }), options)
    ?.report as PolicyReport;
  const members = stored(replicaSet({ namespace: 'a-first-namespace' }), 'uid-rs');
  const warn = buildReport(
    OPENREPORTS,
    await auditStatefulSet(
      members,
      contextOf({
        statefulSets: [members],
        services: [
          { ...headless, metadata: { ...headless.metadata, namespace: 'a-first-namespace' } },
          { ...clusterIp, metadata: { ...clusterIp.metadata, namespace: 'a-first-namespace' } },
        ],
      }),
    ),
    options,
  )?.report as PolicyReport;
  t.equal(warn.results[0]?.result, 'warn');
  const plan = planReports([warn, fail], [asStored(warn, '3')], 1);
  t.same(
    plan.create.map(reportKey),
    ['grade-submission/uid-sts-1'],
    'the fail, though its namespace sorts later',
  );
  t.same(
    plan.delete.map(reportKey),
    ['a-first-namespace/uid-rs'],
    'the warn is deleted to stay under the cap',
  );
  t.equal(plan.capped, 1);

  const held = new Map([[reportKey(warn), asStored(warn, '3')]]);
  const changed = planChanged([{ key: reportKey(fail), desired: fail }], held, 1);
  t.same(
    changed,
    { create: [], update: [], delete: [], capped: 1, unchanged: 0 },
    'a change creates nothing past the cap',
  );
  const room = planChanged([{ key: reportKey(fail), desired: fail }], held, 2);
  t.equal(room.create.length, 1);
  const compliant = planChanged([{ key: reportKey(warn), desired: undefined }], held, 1);
  t.same(
    compliant.delete.map(reportKey),
    ['a-first-namespace/uid-rs'],
    'a change that removes every finding deletes the report',
  );
});

t.test('results map one-to-one onto findings, for every outcome', async (t) => {
  const audited: AuditedObject = {
    ref: { apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: 'ns', name: 'db', uid: 'u' },
    engine: 'mongodb',
    evaluated: [],
    steppedAside: undefined,
    decision: {
      allowed: false,
      violations: [],
      warnings: [],
      message: '',
      findings: [
        { check: 'replica-set', outcome: 'deny', problem: 'd' },
        { check: 'headless-service', outcome: 'deny', problem: 'u', unverified: true },
        { check: 'volume-retention', outcome: 'warn', problem: 'w' },
        { check: 'replica-set', outcome: 'waived', problem: 's', exception: { name: 'e', reason: 'r' } },
      ],
    },
  };
  const report = buildReport(WGPOLICY, audited, options)?.report;
  t.same(
    report?.results.map((r) => [r.rule, r.result, r.message]),
    [
      ['replica-set', 'fail', 'd'],
      ['headless-service', 'error', 'u'],
      ['volume-retention', 'warn', 'w'],
      ['replica-set', 'skip', 's'],
    ],
  );
  t.same(report?.summary, { pass: 0, fail: 1, warn: 1, error: 1, skip: 1 });
});
