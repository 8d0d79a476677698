import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { LocalApiServer } from '../support/apiserver.js';
import { replicaSet, service, statefulSet } from '../support/fixtures.js';
import { repoRoot } from '../support/repo.js';
import { ensureBuilt, runCli, tempDir, writeKubeconfig, writeManifest, yamlDocuments } from './cli.js';

await ensureBuilt();
const dir = await tempDir();
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** The machine shape `--output json` promises. */
interface JsonReport {
  allowed: boolean;
  summary: {
    statefulSets: number;
    admitted: number;
    denied: number;
    passedThrough: number;
    rules: Record<string, Record<'fail' | 'error' | 'warn' | 'skip', number>>;
  };
  objects: Array<{
    source: string;
    kind: string;
    namespace: string;
    name: string;
    allowed: boolean;
    violations: Array<{ rule: string; problem: string; fix: string }>;
    warnings: string[];
    patch: Array<{ op: string; path: string; value?: unknown }>;
    mutated?: V1StatefulSet;
    findings: Array<{ rule: string; result: string; outcome: string; problem: string }>;
  }>;
}

const compliant = yamlDocuments(replicaSet(), service('mongodb-headless'));
const withoutReplSet = yamlDocuments(statefulSet({ replicas: 3 }), service('mongodb-headless'));

t.test('a replica set with --replSet and its headless Service is admitted: exit 0', async (t) => {
  const file = await writeManifest(dir, 'compliant.yaml', compliant);
  const run = await runCli(['check', file]);
  const { stdout, stderr } = run;
  t.match(run, { code: 0 }, 'exit 0: admitted');
  t.match(stdout, /StatefulSet grade-submission\/mongodb\s+-\s+admitted/);
  t.match(stdout, `${file}:1`, 'the object is located by file and line');
  t.match(stdout, '1 StatefulSet checked: 1 admitted, 0 denied; 1 other object passed through.');
  t.equal(stderr, '');
});

t.test(
  'a ClusterIP Service of the input over the replica set is reported (client-routing, a warning)',
  async (t) => {
    const file = await writeManifest(
      dir,
      'client-service.yaml',
      yamlDocuments(
        replicaSet(),
        service('mongodb-headless'),
        service('mongodb', 'grade-submission', '10.96.0.12'),
      ),
    );
    const run = await runCli(['check', file]);
    t.match(run, { code: 0 }, 'a warning, so still admitted');
    t.match(run.stdout, 'Service "grade-submission/mongodb" [client-routing]');
    t.match(run.stdout, 'SECONDARY included');
    t.match(run.stdout, '/?replicaSet=rs0');
  },
);

t.test('a MongoDB with 3 replicas and no --replSet is denied with the exact fix: exit 1', async (t) => {
  const file = await writeManifest(dir, 'no-replset.yaml', withoutReplSet);
  const run = await runCli(['check', file]);
  const { stdout } = run;
  t.match(run, { code: 1 }, 'exit 1: denied');
  t.match(stdout, /replica-set\s+denied\s+container "mongodb" starts MongoDB without --replSet/);
  t.match(stdout, 'fix: set the args of container "mongodb" to: args: ["--replSet","rs0","--bind_ip_all"]');
  t.match(stdout, '1 StatefulSet checked: 0 admitted, 1 denied');
});

t.test(
  'serviceName naming a Service the input does not have is denied, with the Service to add',
  async (t) => {
    const file = await writeManifest(dir, 'no-service.yaml', yamlDocuments(replicaSet()));
    const run = await runCli(['check', file]);
    const { stdout } = run;
    t.match(run, { code: 1 }, 'exit 1: denied');
    t.match(stdout, /headless-service\s+denied\s+spec.serviceName "mongodb-headless" names no Service/);
    // The fix is a YAML snippet; each of its lines stays under the fix column, indented as YAML.
    const fixLines = stdout
      .split('\n')
      .filter((l) => /^\s{20,}(kind: Service|spec:|\s+clusterIP: None)$/.test(l));
    t.equal(fixLines.length, 3, 'the snippet is indented under the fix', { stdout });
  },
);

t.test('a ClusterIP Service named by serviceName is not headless: denied', async (t) => {
  const file = await writeManifest(
    dir,
    'clusterip.yaml',
    yamlDocuments(replicaSet(), service('mongodb-headless', 'grade-submission', '10.96.0.12')),
  );
  const run = await runCli(['check', file]);
  const { stdout } = run;
  t.match(run, { code: 1 }, 'exit 1: denied');
  t.match(stdout, 'names a Service with clusterIP 10.96.0.12');
});

t.test('reads stdin for "-", as in kustomize build overlays/prod | sts-guard check -', async (t) => {
  const admitted = await runCli(['check', '-'], { stdin: compliant });
  t.match(admitted, { code: 0 }, 'exit 0: admitted');
  t.match(admitted.stdout, '<stdin>:1');
  const denied = await runCli(['check', '-'], { stdin: withoutReplSet });
  t.match(denied, { code: 1 }, 'exit 1: denied');
});

t.test(
  '--output json gives every StatefulSet as {kind, namespace, name, allowed, violations, warnings, patch}',
  async (t) => {
    const unnamespaced = statefulSet({ name: 'orders-db', replicas: 3 });
    delete unnamespaced.metadata?.namespace;
    const file = await writeManifest(
      dir,
      'json-shape.yaml',
      yamlDocuments(replicaSet(), service('mongodb-headless'), unnamespaced, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
      }),
    );
    const run = await runCli(['check', '--output', 'json', '--namespace', 'orders', file]);
    const { stdout } = run;
    t.match(run, { code: 1 }, 'exit 1: denied');
    const report = JSON.parse(stdout) as JsonReport;
    t.same(report.summary, {
      statefulSets: 2,
      admitted: 1,
      denied: 1,
      passedThrough: 2,
      // Added with `sts-guard audit` (fields are only ever added): findings counted by rule.
      rules: {
        'replica-set': { fail: 1, error: 0, warn: 0, skip: 0 },
        // orders-db lands in namespace orders, where the input creates no headless Service.
        'headless-service': { fail: 1, error: 0, warn: 0, skip: 0 },
        'client-routing': { fail: 0, error: 0, warn: 0, skip: 0 },
      },
    });
    t.equal(report.allowed, false);
    const [admitted, denied] = report.objects;
    t.same(Object.keys(admitted!), [
      'source',
      'kind',
      'namespace',
      'name',
      'allowed',
      'violations',
      'warnings',
      'patch',
      'exemptions',
      'findings',
    ]);
    t.match(admitted, {
      source: `${file}:1`,
      kind: 'StatefulSet',
      namespace: 'grade-submission',
      name: 'mongodb',
      allowed: true,
      violations: [],
      warnings: [],
    });
    t.same(
      admitted!.patch.map((op) => `${op.op} ${op.path}`),
      [
        'add /spec/template/spec/containers/0/lifecycle',
        'add /spec/volumeClaimTemplates',
        'add /spec/template/spec/containers/0/volumeMounts',
        'add /metadata/annotations',
      ],
    );
    t.equal(denied!.namespace, 'orders', 'an object without metadata.namespace lands in --namespace');
    t.same(
      denied!.violations.map((v) => v.rule),
      ['replica-set', 'headless-service'],
    );
    t.match(denied!.violations[1], {
      problem: 'spec.serviceName "mongodb-headless" names no Service in namespace "orders".',
      fix: /namespace: orders\nspec:\n {2}clusterIP: None/,
    });
    t.same(Object.keys(denied!.violations[0]!), ['rule', 'problem', 'fix']);
  },
);

t.test(
  '--show-mutation prints the JSON Patch and the StatefulSet with the postStart hook and claim template',
  async (t) => {
    const file = await writeManifest(dir, 'mutation.yaml', compliant);
    // The initiation window starts "now"; SOURCE_DATE_EPOCH pins it, so the two runs agree.
    const env = { SOURCE_DATE_EPOCH: '1767225600' };
    const run = await runCli(['check', '--show-mutation', file], { env });
    const { stdout } = run;
    t.match(run, { code: 0 }, 'exit 0: admitted');
    const patchStart = stdout.indexOf('# StatefulSet grade-submission/mongodb');
    const yamlStart = stdout.indexOf('# StatefulSet grade-submission/mongodb after the patch');
    t.ok(patchStart > 0 && yamlStart > patchStart, 'the patch, then the mutated object', { stdout });
    const patch = JSON.parse(
      stdout.slice(stdout.indexOf('\n', patchStart) + 1, yamlStart),
    ) as JsonReport['objects'][0]['patch'];
    t.ok(patch.some((op) => op.path === '/spec/template/spec/containers/0/lifecycle'));
    const mutatedYaml = stdout.slice(
      stdout.indexOf('\n', yamlStart) + 1,
      stdout.lastIndexOf('\n\n1 StatefulSet'),
    );
    const mutated = parseAllDocuments(mutatedYaml)[0]!.toJS() as V1StatefulSet;
    const container = mutated.spec!.template.spec!.containers[0]!;
    t.match(container.lifecycle?.postStart?.exec?.command?.[2], /^# sts-guard:mongodb-replica-set-bootstrap/);
    t.same(
      mutated.spec!.volumeClaimTemplates!.map((c) => c.metadata?.name),
      ['mongodb-data'],
    );
    t.same(container.volumeMounts, [{ name: 'mongodb-data', mountPath: '/data/db' }]);
    const blockScalar = /^( +)- \|\n\1 {2}# sts-guard:mongodb-replica-set-bootstrap v\d+$/m;
    t.ok(blockScalar.test(stdout), 'the script is a YAML block scalar, readable line by line');

    t.match(
      stdout,
      'INITIATE_UNTIL=1767227400',
      'a new environment gets the initiation window from SOURCE_DATE_EPOCH',
    );
    const json = await runCli(['check', '--show-mutation', '-o', 'json', file], { env });
    const [object] = (JSON.parse(json.stdout) as JsonReport).objects;
    t.same(object!.mutated, mutated, 'with --output json the mutated object is in "mutated"');
  },
);

t.test('a YAML error exits 2 naming file, line and column, and checks nothing', async (t) => {
  const file = await writeManifest(
    dir,
    'broken.yaml',
    ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: [mongodb', 'spec: {}', ''].join('\n'),
  );
  const good = await writeManifest(dir, 'good-too.yaml', compliant);
  const run = await runCli(['check', good, file, join(dir, 'missing.yaml')]);
  const { stdout, stderr } = run;
  t.match(run, { code: 2 }, 'exit 2: bad usage or unreadable input');
  t.equal(stdout, '');
  t.match(stderr, new RegExp(`${file}:\\d+:\\d+: YAML error: `));
  t.match(stderr, `${join(dir, 'missing.yaml')}: cannot read: ENOENT`, 'every unreadable input is reported');
});

t.test('bad usage exits 2 with a pointer to --help', async (t) => {
  const unknownFlag = await runCli(['check', '--bogus', 'x.yaml']);
  t.match(unknownFlag, { code: 2 }, 'exit 2: bad usage or unreadable input');
  t.match(unknownFlag.stderr, "Unknown option '--bogus'");
  t.match(unknownFlag.stderr, 'sts-guard check --help');
  t.equal((await runCli(['check', '--output', 'yaml', 'x.yaml'])).code, 2, 'unknown output format');
  t.equal((await runCli(['check'])).code, 2, 'no input');
  t.equal((await runCli(['apply', 'x.yaml'])).code, 2, 'unknown command');
  const badRule = await runCli(['check', '-'], { stdin: compliant, env: { RULE_REPLICA_SET: 'sometimes' } });
  t.match(badRule, { code: 2 }, 'exit 2: bad usage or unreadable input');
  t.match(badRule.stderr, 'RULE_REPLICA_SET');
  const help = await runCli(['check', '--help']);
  t.match(help, { code: 0 }, '--help exits 0');
  t.match(help.stdout, /^Usage: sts-guard check/);
  t.match(help.stdout, 'Exit codes');
});

t.test('an unknown command is refused, even with --help: exit 2, the commands listed', async (t) => {
  for (const argv of [['frobnicate', '--help'], ['frobnicate'], ['apply', 'x.yaml']]) {
    const run = await runCli(argv);
    t.equal(run.code, 2, `${argv.join(' ')}: exit 2`);
    t.equal(run.stdout, '', `${argv.join(' ')}: no usage printed as if it were check's`);
    t.match(run.stderr, `unknown command "${argv[0]}"; the commands are "check"`);
    t.match(run.stderr, 'sts-guard --help');
  }
  const top = await runCli(['--help']);
  t.equal(top.code, 0, 'sts-guard --help exits 0');
  t.match(top.stdout, /^Usage: sts-guard <command>/);
  t.match(top.stdout, /^ {2}check {3}/m, 'lists check');
});

t.test('objects of other kinds, known or not, pass through and never fail the run', async (t) => {
  const file = await writeManifest(
    dir,
    'other-kinds.yaml',
    yamlDocuments(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: 'b' } },
      {
        apiVersion: 'mongodbcommunity.mongodb.com/v1',
        kind: 'MongoDBCommunity',
        metadata: { name: 'operator-managed' },
        spec: { members: 3 },
      },
      // A Deployment running mongod is not what the webhook's rules select: apps/statefulsets only.
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'mongo' }, spec: statefulSet().spec },
      'a scalar document',
    ),
  );
  const run = await runCli(['check', file]);
  const { stdout } = run;
  t.match(run, { code: 0 }, 'exit 0: admitted');
  t.equal(stdout, 'No StatefulSets in the input; 4 other objects passed through.\n');
});

t.test('RULE_REPLICA_SET=warn admits the StatefulSet with the violation as a warning: exit 0', async (t) => {
  const file = await writeManifest(dir, 'warn-mode.yaml', withoutReplSet);
  const run = await runCli(['check', file], { env: { RULE_REPLICA_SET: 'warn' } });
  const { stdout } = run;
  t.match(run, { code: 0 }, 'exit 0: admitted');
  t.match(stdout, /replica-set\s+warning\s+container "mongodb" starts MongoDB without --replSet/);
  t.notMatch(stdout, /replica-set\s+denied/);
  t.match(stdout, '1 admitted, 0 denied');
});

t.test('JSON input and kind: List are read, each item located by its line', async (t) => {
  const list = { apiVersion: 'v1', kind: 'List', items: [service('mongodb-headless'), replicaSet()] };
  const file = await writeManifest(dir, 'list.json', `${JSON.stringify(list, null, '\t')}\n`);
  const run = await runCli(['check', '-o', 'json', file]);
  const { stdout } = run;
  t.match(run, { code: 0 }, 'exit 0: admitted');
  const report = JSON.parse(stdout) as JsonReport;
  t.equal(report.summary.passedThrough, 1);
  t.match(report.objects[0]!.source, new RegExp(`^${file}:(\\d+)$`));
  t.not(report.objects[0]!.source, `${file}:1`, 'the item line, not the line of the List');
});

t.test('a directory is read recursively: a Service in another file of it counts', async (t) => {
  const manifests = join(dir, 'plain-dir');
  await mkdir(join(manifests, 'services'), { recursive: true });
  await writeManifest(manifests, 'mongodb.yaml', yamlDocuments(replicaSet()));
  await writeManifest(
    join(manifests, 'services'),
    'headless.yml',
    yamlDocuments(service('mongodb-headless')),
  );
  await writeManifest(manifests, 'README.md', '# not a manifest');
  const run = await runCli(['check', manifests]);
  const { stdout } = run;
  t.match(run, { code: 0 }, 'exit 0: admitted');
  t.match(stdout, join(manifests, 'mongodb.yaml:1'));
});

t.test('a directory with a kustomization.yaml is rendered with the real kustomize first', async (t) => {
  const base = join(dir, 'kustomization');
  await mkdir(base, { recursive: true });
  const single = statefulSet({ replicas: 1 });
  delete single.metadata?.namespace;
  await writeManifest(base, 'mongodb.yaml', yamlDocuments(single));
  await writeFile(
    join(base, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'namespace: team-a',
      'resources: [mongodb.yaml]',
      // Scaled up by kustomize, not in the file: only a real render shows the violation.
      'replicas: [{name: mongodb, count: 3}]',
      '',
    ].join('\n'),
  );
  const run = await runCli(['check', '-o', 'json', base]);
  const { stdout } = run;
  t.match(run, { code: 1 }, 'exit 1: denied');
  const [object] = (JSON.parse(stdout) as JsonReport).objects;
  t.match(object, { source: base, namespace: 'team-a', name: 'mongodb', allowed: false });
  t.same(
    object!.violations.map((v) => v.rule),
    ['replica-set', 'headless-service'],
  );

  await writeFile(join(base, 'kustomization.yaml'), 'resources: [missing.yaml]\n');
  const broken = await runCli(['check', base]);
  t.match(broken, { code: 2 }, 'a kustomization kustomize cannot build is unreadable input');
  t.match(broken.stderr, 'missing.yaml');
});

t.test('a StatefulSet of a shape the API server would reject is unreadable input: exit 2', async (t) => {
  const malformed = { ...replicaSet(), spec: { ...replicaSet().spec, replicas: 'three' } };
  const file = await writeManifest(dir, 'malformed.yaml', yamlDocuments(malformed));
  const run = await runCli(['check', file]);
  const { stderr } = run;
  t.match(run, { code: 2 }, 'exit 2: bad usage or unreadable input');
  t.match(stderr, `${file}:1: not a valid apps/v1 StatefulSet: object/spec/replicas must be integer`);
});

const overlays = join(repoRoot, 'kustomize/overlays');
t.test(
  'the GitOps bundle: every overlay passes, and an overlay that drops --replSet fails',
  {
    skip: existsSync(overlays)
      ? false
      : 'kustomize/overlays is absent: the GitOps bundle is not in this checkout',
  },
  async (t) => {
    const all = ['dev', 'staging', 'prod'].map((o) => `kustomize/overlays/${o}`);
    const run = await runCli(['check', '-o', 'json', ...all]);
    const { stdout } = run;
    t.match(run, { code: 0 }, 'exit 0: admitted');
    const report = JSON.parse(stdout) as JsonReport;
    t.equal(report.summary.statefulSets, 3);
    for (const object of report.objects) t.match(object, { allowed: true, violations: [], warnings: [] });

    const prod = await runCli(['check', '--show-mutation', 'kustomize/overlays/prod']);
    t.match(prod, { code: 0 }, 'exit 0: admitted');
    t.match(prod.stdout, 'postStart:', 'prod gets the bootstrap hook');

    // A pull request that removes --replSet from prod, as a further overlay on top of it.
    const regression = join(dir, 'prod-without-replset');
    await mkdir(regression, { recursive: true });
    await writeFile(
      join(regression, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${relative(regression, join(overlays, 'prod'))}]`,
        'patches:',
        '  - target: {group: apps, version: v1, kind: StatefulSet, name: mongodb}',
        '    patch: |-',
        '      - op: remove',
        '        path: /spec/template/spec/containers/0/args',
        '',
      ].join('\n'),
    );
    const denied = await runCli(['check', regression]);
    t.match(denied, { code: 1 }, 'exit 1: denied');
    t.match(denied.stdout, /replica-set\s+denied/);
    t.match(denied.stdout, 'args: ["--replSet","rs0","--bind_ip_all"]');
  },
);

t.test('--cluster looks Services up in the cluster of the kubeconfig, then in the input', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  const kubeconfig = await writeKubeconfig(join(dir, 'kubeconfig.yaml'), api.url);
  const env = { KUBECONFIG: kubeconfig };

  // One namespace per situation, so that one run (one client start-up) covers them all.
  api.put(service('mongodb-headless', 'in-cluster'));
  api.put(service('mongodb-headless', 'clusterip-in-cluster', '10.96.0.12'));
  const input = yamlDocuments(
    replicaSet({ namespace: 'in-cluster' }),
    replicaSet({ namespace: 'nowhere' }),
    // Applying the input cannot make the cluster's Service headless: clusterIP is immutable.
    replicaSet({ namespace: 'clusterip-in-cluster' }),
    service('mongodb-headless', 'clusterip-in-cluster'),
    // Not in the cluster yet, but created by the same apply.
    replicaSet({ namespace: 'same-apply' }),
    service('mongodb-headless', 'same-apply'),
  );
  const run = await runCli(['check', '--cluster', '-o', 'json', '-'], { env, stdin: input });
  t.match(run, { code: 1 }, 'exit 1: denied');
  const verdicts = Object.fromEntries(
    (JSON.parse(run.stdout) as JsonReport).objects.map((o) => [
      o.namespace,
      o.allowed ? 'allowed' : o.violations.map((v) => v.problem).join(' '),
    ]),
  );
  t.same(Object.keys(verdicts).sort(), ['clusterip-in-cluster', 'in-cluster', 'nowhere', 'same-apply']);
  t.match(verdicts, {
    'in-cluster': 'allowed',
    nowhere: 'spec.serviceName "mongodb-headless" names no Service in namespace "nowhere".',
    'clusterip-in-cluster': /names a Service with clusterIP 10\.96\.0\.12/,
    'same-apply': 'allowed',
  });
  t.ok(
    api.requests.includes('GET /api/v1/namespaces/in-cluster/services/mongodb-headless'),
    'the look-up is a live GET to the API server of the kubeconfig',
  );

  api.misbehaviour = { kind: 'status', code: 403 };
  const single = yamlDocuments(replicaSet({ namespace: 'in-cluster' }));
  const forbidden = await runCli(['check', '--cluster', '-'], { env, stdin: single });
  t.match(forbidden, { code: 1 }, 'LOOKUP_FAILURE_MODE=deny (the default): an unverifiable Service denies');
  t.match(
    forbidden.stdout,
    /headless-service\s+denied\s+could not verify .*the Kubernetes API answered HTTP 403/,
  );
});
