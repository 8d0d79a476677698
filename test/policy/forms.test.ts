import type { V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import { parse } from 'yaml';
import {
  claimsToLookUp,
  configMapsToLookUp,
  mutateStatefulSet,
  type PolicySettings,
  type ServiceLookup,
  type StatefulSetReview,
  validateStatefulSet,
} from '../../src/policy/index.js';
import { defaultSettings, newStatefulSetLookups, statefulSet } from '../support/fixtures.js';
import { configMapsOf, fixture } from '../support/manifests.js';

const create = (object: V1StatefulSet): StatefulSetReview => ({
  operation: 'CREATE',
  namespace: object.metadata?.namespace ?? 'grade-submission',
  object,
});
const headless: ServiceLookup = {
  outcome: 'found',
  service: { metadata: { name: 'mongodb-headless' }, spec: { clusterIP: 'None' } },
};
const settings = (o: Partial<PolicySettings> = {}): PolicySettings => ({ ...defaultSettings(), ...o });

t.test(
  'the Bitnami chart (architecture=replicaset) is admitted, and no bootstrap hook is forced on it',
  async (t) => {
    const { statefulSet: sts } = fixture('bitnami-mongodb-replicaset.yaml');
    const decision = validateStatefulSet(create(sts), settings(), headless);
    t.equal(decision.allowed, true, decision.message);
    t.same(decision.violations, []);
    const mutation = mutateStatefulSet(create(sts), settings(), newStatefulSetLookups());
    t.same(
      mutation.patch,
      [],
      'its image initiates and joins the set itself; /bitnami/mongodb is on a claim',
    );
    t.same(mutation.warnings, [], 'no initiation-window or Parallel advice for a hook it does not get');
    t.equal(claimsToLookUp(create(sts), settings()), undefined, 'no claim look-up: no window to stamp');
  },
);

t.test(
  'a Bitnami StatefulSet without persistence still gets storage at /bitnami/mongodb, and no hook',
  async (t) => {
    const { statefulSet: sts } = fixture('bitnami-mongodb-replicaset.yaml');
    const container = sts.spec?.template.spec?.containers[0];
    if (!container || !sts.spec) throw new Error('fixture changed');
    container.volumeMounts = container.volumeMounts?.filter((m) => m.name !== 'datadir');
    delete sts.spec.volumeClaimTemplates;
    const mutation = mutateStatefulSet(create(sts), settings(), newStatefulSetLookups());
    t.same(mutation.injected, ['storage']);
    t.match(mutation.patch, [
      { path: '/spec/volumeClaimTemplates' },
      { path: '/spec/template/spec/containers/0/volumeMounts/-', value: { mountPath: '/bitnami/mongodb' } },
      { path: '/metadata/annotations', value: { 'sts-guard.io/injected': 'storage' } },
    ]);
  },
);

t.test(
  'Bitnami with MONGODB_REPLICA_SET_MODE from a ConfigMap (valueFrom) counts as a replica set',
  async (t) => {
    const sts = statefulSet({
      replicas: 3,
      image: 'bitnami/mongodb:7.0',
      container: {
        env: [
          {
            name: 'MONGODB_REPLICA_SET_MODE',
            valueFrom: { configMapKeyRef: { name: 'mongo-env', key: 'mode' } },
          },
          { name: 'MONGODB_REPLICA_SET_NAME', value: 'orders' },
        ],
      },
    });
    t.equal(validateStatefulSet(create(sts), settings(), headless).allowed, true);
  },
);

t.test('a Bitnami image without replica-set environment is denied with the env vars to set', async (t) => {
  const sts = statefulSet({ replicas: 3, image: 'bitnami/mongodb:7.0' });
  const decision = validateStatefulSet(create(sts), settings(), headless);
  t.equal(decision.allowed, false);
  const [violation] = decision.violations;
  t.match(violation?.problem, 'without MONGODB_REPLICA_SET_MODE');
  t.match(violation?.fix, 'MONGODB_REPLICA_SET_MODE=primary');
  t.match(violation?.fix, 'architecture=replicaset');
  t.notMatch(violation?.fix, '--replSet', 'the Bitnami image is not configured by flags');
});

for (const name of ['mongodb-community-operator.yaml', 'percona-server-mongodb.yaml']) {
  t.test(
    `${name}: an operator's StatefulSet is left to the operator, never denied nor mutated`,
    async (t) => {
      const { statefulSet: sts } = fixture(name);
      // No Service look-up is asked for, and none is passed: the operator owns the Service too.
      const review = create(sts);
      const decision = validateStatefulSet(review, settings());
      t.equal(decision.allowed, true, decision.message);
      t.match(
        decision.auditAnnotations?.['stepped-aside'],
        /managed by the MongoDB operator through (MongoDBCommunity\.mongodbcommunity\.mongodb\.com|PerconaServerMongoDB\.psmdb\.percona\.com)/,
      );
      const mutation = mutateStatefulSet(review, settings(), newStatefulSetLookups());
      t.same(mutation.patch, []);
      t.same(mutation.warnings, []);
      t.ok(mutation.auditAnnotations?.['stepped-aside']);
      t.same(configMapsToLookUp(review, settings()), []);
      t.equal(claimsToLookUp(review, settings()), undefined, 'no claim look-up: the operator bootstraps');
    },
  );
}

t.test(
  'the Community operator StatefulSet without its owner could not be told: its config file is written at run time',
  async (t) => {
    const { statefulSet: sts } = fixture('mongodb-community-operator.yaml');
    delete sts.metadata?.ownerReferences;
    const decision = validateStatefulSet(create(sts), settings(), headless);
    t.equal(decision.allowed, false);
    t.match(
      decision.violations[0]?.problem,
      'could not tell whether mongod runs with --replSet: its config file /data/automation-mongod.conf is on volume "data-volume"',
    );
  },
);

t.test(
  'another controller owner is reviewed by default, and left alone with OTHER_CONTROLLER_OWNERS=skip',
  async (t) => {
    const sts = statefulSet({ replicas: 3 });
    sts.metadata = {
      ...sts.metadata,
      ownerReferences: [
        { apiVersion: 'apps.example.com/v1', kind: 'Database', name: 'orders', uid: 'u1', controller: true },
      ],
    };
    t.equal(
      validateStatefulSet(create(sts), settings(), headless).allowed,
      false,
      'review: held to the rules',
    );
    const skipped = validateStatefulSet(create(sts), settings({ otherControllerOwners: 'skip' }), headless);
    t.equal(skipped.allowed, true);
    t.match(skipped.auditAnnotations?.['stepped-aside'], 'OTHER_CONTROLLER_OWNERS=skip');
  },
);

t.test(
  'a config file in a ConfigMap that sets replication.replSetName is admitted; hook, port and data path follow it',
  async (t) => {
    const f = fixture('mongod-config-file.yaml');
    const review = create(f.statefulSet);
    t.same(configMapsToLookUp(review, settings()), ['mongodb-config']);
    const configMaps = configMapsOf(f);
    const decision = validateStatefulSet(review, settings(), headless, { configMaps });
    t.equal(decision.allowed, true, decision.message);
    t.equal(claimsToLookUp(review, settings()), undefined, 'without the file, no hook is known to be due');
    t.equal(
      claimsToLookUp(review, settings(), { configMaps }),
      'grade-submission',
      'with it, the window needs the claims',
    );
    const mutation = mutateStatefulSet(review, settings(), { ...newStatefulSetLookups(), configMaps });
    t.same(mutation.injected, ['bootstrap-hook', 'storage']);
    const hook = JSON.stringify(mutation.patch[0]?.value);
    t.match(hook, 'rs0', 'the hook initiates the set named in the file');
    t.match(hook, '27018', 'on the port net.port names');
    t.match(mutation.patch, [{}, {}, { value: { mountPath: '/data/mongo' } }], 'storage at storage.dbPath');
  },
);

t.test('a config file without replication is denied with the replication: block to add', async (t) => {
  const f = fixture('mongod-config-file-without-replication.yaml');
  const decision = validateStatefulSet(create(f.statefulSet), settings(), headless, {
    configMaps: configMapsOf(f),
  });
  t.equal(decision.allowed, false);
  const [violation] = decision.violations;
  t.match(violation?.problem, 'from a config file without replication.replSetName');
  t.match(
    violation?.fix,
    'add this to mongod\'s config file /etc/mongod/mongod.conf (key "mongod.conf" of ConfigMap "mongodb-config"):\nreplication:\n  replSetName: rs0',
  );
});

t.test('a config file whose ConfigMap cannot be read follows the look-up failure mode', async (t) => {
  const f = fixture('mongod-config-file.yaml');
  const configMaps = new Map([
    ['mongodb-config', { outcome: 'unavailable' as const, reason: 'the Kubernetes API answered HTTP 403' }],
  ]);
  const denied = validateStatefulSet(create(f.statefulSet), settings(), headless, { configMaps });
  t.equal(denied.allowed, false);
  t.match(
    denied.violations[0]?.problem,
    'could not tell whether mongod runs with --replSet: could not read ConfigMap "mongodb-config": the Kubernetes API answered HTTP 403',
  );
  const warned = validateStatefulSet(
    create(f.statefulSet),
    settings({ lookupFailureMode: 'warn' }),
    headless,
    { configMaps },
  );
  t.equal(warned.allowed, true);
  t.match(warned.warnings.join('\n'), 'could not tell whether mongod runs with --replSet');
  const mutation = mutateStatefulSet(create(f.statefulSet), settings(), {
    ...newStatefulSetLookups(),
    configMaps,
  });
  t.same(mutation.patch, [], 'nothing is injected on guesswork');
});

t.test('a config file in a Secret is reported as unreadable, and the rule mode decides', async (t) => {
  const sts = statefulSet({
    replicas: 3,
    args: ['-f', '/etc/mongod/mongod.conf'],
    container: { volumeMounts: [{ name: 'conf', mountPath: '/etc/mongod' }] },
  });
  sts.spec!.template.spec!.volumes = [{ name: 'conf', secret: { secretName: 'mongod-conf' } }];
  t.same(configMapsToLookUp(create(sts), settings()), [], 'Secrets are never read');
  const denied = validateStatefulSet(create(sts), settings(), headless);
  t.equal(denied.allowed, false);
  t.match(denied.violations[0]?.problem, 'is in Secret "mongod-conf", which sts-guard does not read');
  const warned = validateStatefulSet(
    create(sts),
    settings({ rules: { ...defaultSettings().rules, 'replica-set': 'warn' } }),
    headless,
  );
  t.equal(warned.allowed, true);
  t.match(warned.warnings.join('\n'), 'could not tell whether mongod runs with --replSet');
});

t.test('a shell wrapper that execs mongod --replSet is admitted, and gets the hook', async (t) => {
  const { statefulSet: sts } = fixture('shell-wrapped-mongod.yaml');
  t.equal(validateStatefulSet(create(sts), settings(), headless).allowed, true);
  t.same(mutateStatefulSet(create(sts), settings(), newStatefulSetLookups()).injected, [
    'bootstrap-hook',
    'storage',
  ]);
});

t.test(
  'a shell wrapper without --replSet is denied with the script line to edit, never args after the script',
  async (t) => {
    const { statefulSet: sts } = fixture('shell-wrapped-mongod-without-replset.yaml');
    const decision = validateStatefulSet(create(sts), settings(), headless);
    t.equal(decision.allowed, false);
    const fix = decision.violations[0]?.fix ?? '';
    t.match(
      fix,
      'the shell script in args[0] of container "mongodb" starts mongod without --replSet; edit its line to:\n  ulimit -n 64000; exec mongod --replSet rs0 --bind_ip_all',
    );
    const args = parse(
      fix
        .split('\n')
        .at(-1)
        ?.replace(/^that is, set /, '') ?? '',
    ).args;
    t.same(
      args,
      ['ulimit -n 64000; exec mongod --replSet rs0 --bind_ip_all'],
      'one script, no $0/$1 appended',
    );
  },
);

const wrapped = (script: string, o: { args?: string[]; env?: Array<{ name: string; value: string }> } = {}) =>
  statefulSet({
    replicas: 3,
    command: ['bash', '-ec', script],
    ...(o.args ? { args: o.args } : {}),
    container: { env: o.env ?? [] },
  });

t.test('shell scripts: what can be read is read, the rest is reported, never silently allowed', async (t) => {
  const cases: Array<[string, ReturnType<typeof wrapped>, boolean | RegExp]> = [
    [
      'env assignment and numactl',
      wrapped('export GLIBC_TUNABLES=x\nexec numactl --interleave=all mongod --replSet=rs0 --bind_ip_all'),
      true,
    ],
    ['docker-entrypoint.sh with flags', wrapped('exec docker-entrypoint.sh --replSet rs0'), true],
    ['variable set in the script', wrapped('RS=orders; exec mongod --replSet "$RS" --bind_ip_all'), true],
    [
      'variable from the container env',
      wrapped('exec mongod --replSet $RS --bind_ip_all', { env: [{ name: 'RS', value: 'rs0' }] }),
      true,
    ],
    [
      '"$@" from the args after the script',
      wrapped('exec mongod "$@"', { args: ['mongod', '--replSet', 'rs0'] }),
      true,
    ],
    ['quoted --replSet', wrapped(`exec mongod '--replSet' 'rs 0' --bind_ip_all`), true],
    [
      'arguments from a variable the shell expands',
      wrapped('exec mongod $MONGOD_ARGS'),
      /mongod's arguments include \$MONGOD_ARGS/,
    ],
    ['a here-document', wrapped('cat <<EOF > /tmp/x\nhi\nEOF\nexec mongod'), /here-document/],
    [
      'mongod inside a function',
      wrapped('start() { exec mongod --replSet rs0; }; start'),
      /subshell or function/,
    ],
    [
      'a script that runs another script',
      wrapped('exec /opt/start.sh'),
      /does not start mongod itself \(it runs \/opt\/start.sh\)/,
    ],
    ['an unclosed quote', wrapped('exec mongod "--replSet rs0'), /double quote is not closed/],
  ];
  for (const [what, sts, expected] of cases) {
    const decision = validateStatefulSet(create(sts), settings(), headless);
    if (expected === true) t.equal(decision.allowed, true, `${what}: ${decision.message}`);
    else {
      t.equal(decision.allowed, false, what);
      t.match(decision.violations[0]?.problem, expected, what);
      t.match(decision.violations[0]?.problem, 'could not tell whether mongod runs with --replSet', what);
    }
  }
});

t.test('could-not-tell and waived warnings stay within the 256 characters kubectl passes on', async (t) => {
  const secret = statefulSet({
    replicas: 3,
    name: 'inventory-mongodb',
    namespace: 'inventory-production',
    args: ['-f', '/etc/mongodb/conf.d/mongod.conf'],
    container: { volumeMounts: [{ name: 'conf', mountPath: '/etc/mongodb/conf.d' }] },
  });
  secret.spec!.template.spec!.volumes = [{ name: 'conf', secret: { secretName: 'inventory-mongodb-conf' } }];
  const warnMode = settings({ rules: { ...defaultSettings().rules, 'replica-set': 'warn' } });
  const cases = [
    validateStatefulSet(create(secret), warnMode, headless),
    validateStatefulSet(
      create(wrapped('exec mongod $MONGOD_EXTRA_ARGUMENTS_FROM_THE_PLATFORM')),
      warnMode,
      headless,
    ),
    validateStatefulSet(create(secret), settings(), headless, {
      exceptions: {
        exceptions: [
          {
            name: 'inventory-legacy-standalone',
            reason: 'x'.repeat(120),
            rules: ['*'],
            match: { names: ['inventory-mongodb'] },
          },
        ],
      },
    }),
  ];
  for (const d of cases) {
    t.ok(d.warnings.length > 0);
    for (const w of d.warnings) t.ok(w.length <= 256, `${w.length} chars: ${w}`);
  }
});
