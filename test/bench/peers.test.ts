import t from 'tap';
import { agreement, loadCorpus, outsideCommonPart } from '../../bench/peers/corpus.js';
import { kyvernoHookScript, kyvernoPolicy, MONGODB_IMAGE_RE2 } from '../../bench/peers/policy.js';
import { BOOTSTRAP_MARKER, bootstrapScript } from '../../src/engines/mongodb/bootstrap.js';
import { mongodb } from '../../src/engines/mongodb/index.js';

// bench:peers runs Kyverno itself (not in CI: it is built from its Go module); these check the
// parts of the comparison that hold without it.

t.test("the Kyverno policy's image pattern is sts-guard's MongoDB image rule", async (t) => {
  // RE2's leading (?i) is JavaScript's `i` flag; the rest of the pattern reads the same in both.
  const pattern = new RegExp(MONGODB_IMAGE_RE2.replace('(?i)', ''), 'i');
  for (const image of [
    'mongo',
    'mongo:4.4',
    'docker.io/library/mongo@sha256:3f4c2d0a9b8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a',
    'registry.local:5000/library/mongo:7@sha256:3f4c2d0a9b8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a',
    'localhost:5000/mongodb:7.0',
    'bitnami/mongodb:7.0.12',
    'mongodb/mongodb-community-server:7.0-ubi8',
    'quay.io/mongodb/mongodb-enterprise-server:7.0',
    'percona/percona-server-mongodb:7.0.12-7',
    'MONGO:4.4',
    'percona/mongodb_exporter:0.40',
    'mongo-express:1.0',
    'nginx:1.27',
    'example.com/mongo/agent:1',
    'mongodb/mongodb-agent:107.0',
  ]) {
    t.equal(pattern.test(image), mongodb.matchesImage(image), image);
  }
});

t.test("the hook Kyverno injects is sts-guard's, once Kyverno has substituted the request", async (t) => {
  // What Kyverno does to the patch: its {{ }} variables, then `\$(` unescaped to `$(`.
  const substituted = kyvernoHookScript()
    .replace('{{ replicaSetName }}', 'rs0')
    .replace('{{ request.object.spec.serviceName }}', 'mongodb-headless')
    .replace('{{ request.namespace }}', 'grade-submission')
    .replaceAll('\\$(', '$(');
  const stsGuard = bootstrapScript({
    replicaSetName: 'rs0',
    serviceName: 'mongodb-headless',
    namespace: 'grade-submission',
    clusterDomain: 'cluster.local',
    port: 27017,
  });
  t.equal(substituted, stsGuard);
  t.notMatch(
    kyvernoHookScript(),
    /(^|[^\\])\$\([^ )]*\)/,
    'no `$(…)` left that Kyverno would take for a reference',
  );
  const rules = kyvernoPolicy().spec.rules.map((r) => r.name);
  t.same(rules, ['bootstrap-hook', 'replica-set', 'headless-service'], 'the three rules of the common part');
});

t.test('the corpus: each case outside the common part says why', async (t) => {
  const corpus = await loadCorpus();
  const bySource = Object.fromEntries(corpus.map((c) => [c.source, c.outside]));
  t.match(bySource['test/fixtures/mongodb-community-operator.yaml'], /MongoDBCommunity/);
  t.match(bySource['test/fixtures/percona-server-mongodb.yaml'], /PerconaServerMongoDB/);
  t.match(bySource['test/fixtures/bitnami-mongodb-replicaset.yaml'], /bitnami/);
  t.match(bySource['test/fixtures/shell-wrapped-mongod.yaml'], /shell wrapper/);
  t.match(bySource['test/fixtures/mongod-config-file.yaml'], /config file/);
  for (const inside of [
    'test/e2e/scenarios/compliant-replica-set',
    'test/e2e/scenarios/seed-without-replset',
    'test/e2e/scenarios/not-a-database',
  ]) {
    t.equal(bySource[inside], undefined, `${inside} is in the common part`);
  }
  t.equal(
    outsideCommonPart({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'm' },
      spec: {
        template: {
          spec: { containers: [{ name: 'm', image: 'mongo:7', args: ['--config=/etc/mongod.conf'] }] },
        },
      },
    }),
    'a mongod config file, which sts-guard reads from its ConfigMap',
  );
});

t.test('verdicts agree on admission and on the hook, not on the initiation window', async (t) => {
  const hook = (until: number) => `/bin/sh\n-c\n${BOOTSTRAP_MARKER} v3\nINITIATE_UNTIL=${until}\nexit 0`;
  t.ok(
    agreement({ allowed: false, message: 'a', hooks: {} }, { allowed: false, message: 'b', hooks: {} }).agree,
  );
  t.notOk(
    agreement({ allowed: true, message: '', hooks: {} }, { allowed: false, message: 'x', hooks: {} }).agree,
  );
  t.ok(
    agreement(
      { allowed: true, message: '', hooks: { mongodb: hook(1767227400) } },
      { allowed: true, message: '', hooks: { mongodb: hook(0) } },
    ).agree,
    'the window is stamped by sts-guard alone',
  );
  const differs = agreement(
    { allowed: true, message: '', hooks: { mongodb: hook(0) } },
    { allowed: true, message: '', hooks: { mongodb: hook(0).replace('exit 0', 'exit 1') } },
  );
  t.notOk(differs.agree);
  t.match(differs.why, 'first at line 5: sts-guard "exit 0", Kyverno "exit 1"');
  t.notOk(
    agreement(
      { allowed: true, message: '', hooks: { mongodb: hook(0) } },
      { allowed: true, message: '', hooks: { mongodb: undefined } },
    ).agree,
    'a hook from one side only',
  );
});
