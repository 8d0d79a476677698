import { readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { LocalApiServer } from '../support/apiserver.js';
import { fixture } from '../support/manifests.js';
import { repoRoot } from '../support/repo.js';
import { ensureBuilt, runCli, tempDir, writeKubeconfig, writeManifest, yamlDocuments } from './cli.js';

// `sts-guard check` on the forms MongoDB really runs in (test/fixtures/, each citing its source):
// the same verdicts as the webhook (test/server/forms.test.ts), from the same policy.
await ensureBuilt();
const dir = await tempDir();
t.teardown(() => rm(dir, { recursive: true, force: true }));
const path = (name: string) => relative(repoRoot, fixture(name).path);

interface JsonObject {
  name: string;
  allowed: boolean;
  violations: Array<{ rule: string; problem: string; fix: string }>;
  warnings: string[];
  patch: unknown[];
  exemptions: Array<{ exception: string; rule: string }>;
  steppedAside?: string;
}

t.test(
  'the Bitnami chart and both operators are admitted, with nothing forced on them: exit 0',
  async (t) => {
    const run = await runCli([
      'check',
      path('bitnami-mongodb-replicaset.yaml'),
      path('mongodb-community-operator.yaml'),
      path('percona-server-mongodb.yaml'),
    ]);
    t.match(run, { code: 0, stderr: '' });
    t.match(run.stdout, /StatefulSet grade-submission\/mongodb\s+-\s+admitted\s+nothing to inject/);
    t.match(
      run.stdout,
      /StatefulSet mongodb\/example-mongodb\s+-\s+admitted\s+left to its controller: managed by the MongoDB operator through MongoDBCommunity.mongodbcommunity.mongodb.com "example-mongodb"/,
    );
    t.match(
      run.stdout,
      /StatefulSet psmdb\/my-cluster-name-rs0\s+-\s+admitted\s+left to its controller: managed by the MongoDB operator through PerconaServerMongoDB.psmdb.percona.com/,
    );
    t.match(run.stdout, '3 StatefulSets checked: 3 admitted, 0 denied');
  },
);

t.test('--output json says why sts-guard stepped aside, and patches nothing', async (t) => {
  const run = await runCli(['check', '-o', 'json', path('percona-server-mongodb.yaml')]);
  const [object] = (JSON.parse(run.stdout) as { objects: JsonObject[] }).objects;
  t.equal(object?.allowed, true);
  t.same(object?.patch, []);
  t.match(object?.steppedAside, 'managed by the MongoDB operator');
});

t.test(
  'a config file on a ConfigMap in the input: with replSetName admitted, without it denied with the block',
  async (t) => {
    const admitted = await runCli(['check', path('mongod-config-file.yaml')]);
    t.match(admitted, { code: 0 });
    t.match(
      admitted.stdout,
      'the webhook injects the replica-set bootstrap postStart hook and a volumeClaimTemplate',
    );
    const denied = await runCli(['check', path('mongod-config-file-without-replication.yaml')]);
    t.match(denied, { code: 1 });
    t.match(
      denied.stdout,
      /replica-set\s+denied\s+container "mongodb" starts MongoDB from a config file without replication.replSetName/,
    );
    t.match(
      denied.stdout,
      /fix: add this to mongod's config file \/etc\/mongod\/mongod.conf \(key "mongod.conf" of ConfigMap "mongodb-config"\):\n\s+replication:\n\s+replSetName: rs0/,
    );
  },
);

t.test(
  'a config file whose ConfigMap is neither in the input nor looked up is denied: could not tell',
  async (t) => {
    const text = await readFile(fixture('mongod-config-file.yaml').path, 'utf8');
    const withoutConfigMap = parseAllDocuments(text)
      .map((d) => d.toJS())
      .filter((o) => o.kind !== 'ConfigMap');
    const file = await writeManifest(dir, 'no-configmap.yaml', yamlDocuments(...withoutConfigMap));
    const run = await runCli(['check', file]);
    t.match(run, { code: 1 });
    t.match(
      run.stdout,
      'could not tell whether mongod runs with --replSet: ConfigMap "mongodb-config", which holds its config file, does not exist',
    );
  },
);

t.test('--cluster reads the ConfigMap from the cluster when the input lacks it', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  for (const c of fixture('mongod-config-file.yaml').configMaps) api.putConfigMap(c);
  for (const s of fixture('mongod-config-file.yaml').services) api.put(s);
  const kubeconfig = await writeKubeconfig(join(dir, 'kubeconfig.yaml'), api.url);
  const input = yamlDocuments(fixture('mongod-config-file.yaml').statefulSet);
  const run = await runCli(['check', '--cluster', '-'], { env: { KUBECONFIG: kubeconfig }, stdin: input });
  t.match(run, { code: 0 }, run.stdout);
  t.ok(api.requests.includes('GET /api/v1/namespaces/grade-submission/configmaps/mongodb-config'));
});

t.test(
  'a shell wrapper: exec mongod --replSet admitted; without it denied with the script line, not args after it',
  async (t) => {
    t.match(await runCli(['check', path('shell-wrapped-mongod.yaml')]), { code: 0 });
    const run = await runCli(['check', '-o', 'json', path('shell-wrapped-mongod-without-replset.yaml')]);
    t.match(run, { code: 1 });
    const [object] = (JSON.parse(run.stdout) as { objects: JsonObject[] }).objects;
    const fix = object?.violations[0]?.fix ?? '';
    t.match(fix, 'edit its line to:\n  ulimit -n 64000; exec mongod --replSet rs0 --bind_ip_all');
    t.match(fix, 'that is, set args: ["ulimit -n 64000; exec mongod --replSet rs0 --bind_ip_all"]');
  },
);

t.test(
  "--exceptions takes the platform team's ConfigMap manifest and waives the rule, as the webhook does",
  async (t) => {
    const exceptions = await writeManifest(
      dir,
      'sts-guard-exceptions.yaml',
      yamlDocuments({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'sts-guard-exceptions', namespace: 'sts-guard' },
        data: {
          'exceptions.yaml': yamlDocuments({
            apiVersion: 'sts-guard.io/v1',
            kind: 'ExceptionList',
            exceptions: [
              {
                name: 'legacy-grade-db',
                reason: 'INFRA-42',
                rules: ['replica-set'],
                match: { namespaces: ['grade-submission'], names: ['mongodb'] },
              },
            ],
          }),
        },
      }),
    );
    const run = await runCli([
      'check',
      '-o',
      'json',
      '--exceptions',
      exceptions,
      path('shell-wrapped-mongod-without-replset.yaml'),
    ]);
    t.match(run, { code: 0 });
    const [object] = (JSON.parse(run.stdout) as { objects: JsonObject[] }).objects;
    t.same(object?.exemptions, [{ exception: 'legacy-grade-db', rule: 'replica-set' }]);
    t.match(object?.warnings.join('\n'), 'waived by exception "legacy-grade-db" (INFRA-42)');

    t.match(
      await runCli([
        'check',
        '--exceptions',
        'deploy/base/exceptions.yaml',
        path('shell-wrapped-mongod-without-replset.yaml'),
      ]),
      { code: 1 },
      'the shipped list is empty',
    );
  },
);

t.test('an invalid exception list is an input error naming every problem: exit 2', async (t) => {
  const bad = await writeManifest(
    dir,
    'bad-exceptions.yaml',
    'apiVersion: sts-guard.io/v1\nkind: ExceptionList\nexceptions:\n  - name: x\n    rules: [replicaset]\n    match: {}\n    owner: me\n',
  );
  const run = await runCli(['check', '--exceptions', bad, path('shell-wrapped-mongod.yaml')]);
  t.match(run, { code: 2, stdout: '' });
  t.match(run.stderr, 'not a valid ExceptionList');
  t.match(run.stderr, 'exceptions.0: unknown field "owner"');
  t.match(run.stderr, "exceptions.0: must have required property 'reason'");
  t.match(
    run.stderr,
    'exceptions.0.rules.0: must be one of "replica-set", "headless-service", "service-protection", "client-routing", "*"',
  );
  t.match(run.stderr, 'exceptions.0.match: must NOT have fewer than 1 properties');
});
