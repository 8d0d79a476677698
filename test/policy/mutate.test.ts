import type { V1Lifecycle, V1StatefulSet } from '@kubernetes/client-node';
import fc from 'fast-check';
import t from 'tap';
import {
  INJECTED_ANNOTATION,
  mutateStatefulSet,
  type PolicySettings,
  type StatefulSetReview,
} from '../../src/policy/index.js';
import { defaultSettings, newStatefulSetLookups, replicaSet, statefulSet } from '../support/fixtures.js';
import { applied } from '../support/json-patch.js';

const create = (object: V1StatefulSet, namespace = 'grade-submission'): StatefulSetReview => ({
  operation: 'CREATE',
  namespace,
  object,
});

const mongo = (sts: V1StatefulSet) => sts.spec?.template.spec?.containers.find((c) => c.name === 'mongodb');

t.test('CREATE: injects the bootstrap hook, a claim template, its mount and the annotation', async (t) => {
  const sts = replicaSet();
  const m = mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups());
  t.same(m.injected, ['bootstrap-hook', 'storage']);
  t.same(m.warnings, []);
  const out = applied(sts, m.patch);
  const container = mongo(out);
  const command = container?.lifecycle?.postStart?.exec?.command ?? [];
  t.same(command.slice(0, 2), ['/bin/sh', '-c']);
  t.match(command[2], '# sts-guard:mongodb-replica-set-bootstrap');
  t.same(out.spec?.volumeClaimTemplates, [
    {
      metadata: { name: 'mongodb-data', labels: { 'app.kubernetes.io/managed-by': 'sts-guard' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
  ]);
  t.same(container?.volumeMounts, [{ name: 'mongodb-data', mountPath: '/data/db' }]);
  t.equal(out.metadata?.annotations?.[INJECTED_ANNOTATION], 'bootstrap-hook,storage');
});

t.test('the hook addresses members by their stable DNS names, from serviceName and namespace', async (t) => {
  const settings: PolicySettings = { ...defaultSettings(), clusterDomain: 'corp.internal' };
  const sts = replicaSet({ args: ['--replSet', 'grades', '--port', '27018'], serviceName: 'db-members' });
  const out = applied(sts, mutateStatefulSet(create(sts, 'team-a'), settings, newStatefulSetLookups()).patch);
  const script = mongo(out)?.lifecycle?.postStart?.exec?.command?.[2] ?? '';
  t.match(script, "SERVICE='db-members.team-a.svc.corp.internal'");
  t.match(script, "RS='grades'");
  t.match(script, 'PORT=27018');
});

t.test('the hook does not depend on the replica count, so scaling never rolls the pods', async (t) => {
  const hookFor = (replicas: number) => {
    const sts = replicaSet({ replicas });
    return mongo(
      applied(sts, mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups()).patch),
    )?.lifecycle;
  };
  t.same(hookFor(1), hookFor(3));
  t.same(hookFor(3), hookFor(7));
});

t.test('keeps preStop and other lifecycle fields intact', async (t) => {
  const preStop = { exec: { command: ['mongod', '--shutdown'] } };
  const sts = replicaSet({ container: { lifecycle: { preStop } } });
  const m = mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups());
  t.ok(m.patch.some((op) => op.path === '/spec/template/spec/containers/0/lifecycle/postStart'));
  const lifecycle = mongo(applied(sts, m.patch))?.lifecycle;
  t.same(lifecycle?.preStop, preStop);
  t.ok(lifecycle?.postStart?.exec);
});

t.test('never overwrites a postStart the user wrote, and warns', async (t) => {
  const postStart = { exec: { command: ['/scripts/init-replica-set.sh'] } };
  const sts = replicaSet({ container: { lifecycle: { postStart } } });
  const m = mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups());
  t.notOk(m.patch.some((op) => op.path.includes('lifecycle')));
  t.same(mongo(applied(sts, m.patch))?.lifecycle?.postStart, postStart);
  t.match(m.warnings.join('\n'), 'has its own postStart hook');
});

t.test('adds no storage when a volume is already mounted at the data path or above it', async (t) => {
  for (const mountPath of ['/data/db', '/data', '/data/db/']) {
    const sts = replicaSet({ container: { volumeMounts: [{ name: 'data', mountPath }] } });
    sts.spec = { ...sts.spec!, volumeClaimTemplates: [{ metadata: { name: 'data' } }] };
    const m = mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups());
    t.same(m.injected, ['bootstrap-hook'], mountPath);
  }
});

t.test('a mount elsewhere does not count: storage goes to --dbpath', async (t) => {
  const sts = replicaSet({
    args: ['--replSet', 'rs0', '--dbpath=/var/lib/mongo'],
    container: { volumeMounts: [{ name: 'config', mountPath: '/etc/mongo' }] },
  });
  sts.spec!.template.spec!.volumes = [{ name: 'config', configMap: { name: 'mongo-config' } }];
  const out = applied(sts, mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups()).patch);
  t.same(mongo(out)?.volumeMounts, [
    { name: 'config', mountPath: '/etc/mongo' },
    { name: 'mongodb-data', mountPath: '/var/lib/mongo' },
  ]);
});

t.test('claim templates take size and storage class from the configuration', async (t) => {
  const settings: PolicySettings = {
    ...defaultSettings(),
    storage: { size: '20Gi', storageClassName: 'fast-ssd' },
  };
  const out = applied(
    replicaSet(),
    mutateStatefulSet(create(replicaSet()), settings, newStatefulSetLookups()).patch,
  );
  t.same(out.spec?.volumeClaimTemplates?.[0]?.spec, {
    accessModes: ['ReadWriteOnce'],
    resources: { requests: { storage: '20Gi' } },
    storageClassName: 'fast-ssd',
  });
});

t.test('picks another claim name when mongodb-data is taken by a pod volume', async (t) => {
  const sts = replicaSet();
  sts.spec!.template.spec!.volumes = [{ name: 'mongodb-data', emptyDir: {} }];
  const out = applied(sts, mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups()).patch);
  t.equal(out.spec?.volumeClaimTemplates?.[0]?.metadata?.name, 'sts-guard-mongodb-data');
});

t.test('escapes "/" in the annotation key when annotations already exist', async (t) => {
  const sts = replicaSet();
  sts.metadata!.annotations = { 'team.example.com/owner': 'grades' };
  const m = mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups());
  t.ok(m.patch.some((op) => op.path === '/metadata/annotations/sts-guard.io~1injected'));
  t.same(applied(sts, m.patch).metadata?.annotations, {
    'team.example.com/owner': 'grades',
    'sts-guard.io/injected': 'bootstrap-hook,storage',
  });
});

t.test('UPDATE: never adds volumeClaimTemplates (immutable) and warns instead', async (t) => {
  const old = replicaSet();
  const m = mutateStatefulSet(
    { operation: 'UPDATE', namespace: 'grade-submission', object: old, oldObject: old },
    defaultSettings(),
    newStatefulSetLookups(),
  );
  t.notOk(m.patch.some((op) => op.path.startsWith('/spec/volumeClaimTemplates')));
  t.same(m.injected, ['bootstrap-hook']);
  t.match(m.warnings.join('\n'), 'volumeClaimTemplates are immutable');
});

t.test('UPDATE: an apply that dropped the injected claim gets the same claim back, unchanged', async (t) => {
  const manifest = replicaSet();
  const live = applied(
    manifest,
    mutateStatefulSet(create(manifest), defaultSettings(), newStatefulSetLookups()).patch,
  );
  // Server-side apply of the original manifest removes fields the manifest does not have.
  const incoming = structuredClone(manifest);
  incoming.metadata!.annotations = { ...live.metadata?.annotations };
  incoming.spec!.template.spec!.containers[0]!.lifecycle = mongo(live)?.lifecycle;
  const m = mutateStatefulSet(
    { operation: 'UPDATE', namespace: 'grade-submission', object: incoming, oldObject: live },
    defaultSettings(),
    newStatefulSetLookups(),
  );
  const out = applied(incoming, m.patch);
  t.same(out.spec?.volumeClaimTemplates, live.spec?.volumeClaimTemplates);
  t.same(mongo(out)?.volumeMounts, mongo(live)?.volumeMounts);
  t.same(out.spec, live.spec, 'the stored spec does not drift');
});

t.test('a StatefulSet without --replSet, or not a database, is not mutated', async (t) => {
  t.same(
    mutateStatefulSet(create(statefulSet({ replicas: 1 })), defaultSettings(), newStatefulSetLookups()).patch,
    [],
  );
  t.same(
    mutateStatefulSet(
      create(statefulSet({ image: 'postgres:16', args: ['--replSet', 'x'] })),
      defaultSettings(),
      newStatefulSetLookups(),
    ).patch,
    [],
  );
});

t.test('a replica set without serviceName gets storage but no hook, and a warning', async (t) => {
  const m = mutateStatefulSet(
    create(replicaSet({ serviceName: '' })),
    defaultSettings(),
    newStatefulSetLookups(),
  );
  t.same(m.injected, ['storage']);
  t.match(m.warnings.join('\n'), 'spec.serviceName is empty');
});

t.test('DELETE and CONNECT are never mutated', async (t) => {
  for (const operation of ['DELETE', 'CONNECT'] as const) {
    t.same(
      mutateStatefulSet(
        { operation, namespace: 'grade-submission', oldObject: replicaSet() },
        defaultSettings(),
        newStatefulSetLookups(),
      ).patch,
      [],
    );
  }
});

// Generated StatefulSets: images of several engines, every argv form, existing lifecycles,
// mounts, volumes, claim templates and annotations, in any combination.
const containerArb = fc.record({
  image: fc.constantFrom(
    'mongo:4.4',
    'mongo:7.0',
    'bitnami/mongodb:7.0',
    'percona/percona-server-mongodb:7.0',
    'redis:7',
  ),
  replSet: fc.option(fc.constantFrom(['--replSet', 'rs0'], ['--replSet=grades'], ['--replSet', 'a-b_c']), {
    nil: undefined,
  }),
  viaCommand: fc.boolean(),
  dbpath: fc.option(fc.constantFrom('/data/db', '/var/lib/mongo', '/srv/data/'), { nil: undefined }),
  port: fc.option(fc.integer({ min: 1024, max: 65535 }), { nil: undefined }),
  lifecycle: fc.option(
    fc.constantFrom<V1Lifecycle>(
      { preStop: { exec: { command: ['mongod', '--shutdown'] } } },
      { postStart: { exec: { command: ['/init.sh'] } } },
      {},
    ),
    { nil: undefined },
  ),
  mountPath: fc.option(fc.constantFrom('/data/db', '/data', '/etc/mongo', '/bitnami/mongodb'), {
    nil: undefined,
  }),
});

const statefulSetArb = fc
  .record({
    replicas: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
    serviceName: fc.constantFrom('mongodb-headless', 'db', ''),
    namespace: fc.constantFrom('grade-submission', 'team-a'),
    container: containerArb,
    sidecar: fc.boolean(),
    annotations: fc.option(fc.dictionary(fc.constantFrom('a', 'team/x', 'x~y'), fc.string()), {
      nil: undefined,
    }),
    extraVolume: fc.boolean(),
    existingClaim: fc.boolean(),
  })
  .map((g) => {
    const argv = [
      ...(g.container.replSet ?? []),
      ...(g.container.dbpath ? ['--dbpath', g.container.dbpath] : []),
    ];
    if (g.container.port) argv.push(`--port=${g.container.port}`);
    const sts = statefulSet({
      namespace: g.namespace,
      replicas: g.replicas,
      image: g.container.image,
      serviceName: g.serviceName,
      ...(g.container.viaCommand ? { command: ['mongod', ...argv] } : { args: argv }),
      container: {
        ...(g.container.lifecycle ? { lifecycle: g.container.lifecycle } : {}),
        ...(g.container.mountPath
          ? { volumeMounts: [{ name: 'data', mountPath: g.container.mountPath }] }
          : {}),
      },
      sidecars: g.sidecar ? [{ name: 'exporter', image: 'percona/mongodb_exporter:0.40' }] : [],
    });
    if (g.annotations) sts.metadata!.annotations = g.annotations;
    if (g.extraVolume) sts.spec!.template.spec!.volumes = [{ name: 'mongodb-data', emptyDir: {} }];
    if (g.existingClaim || g.container.mountPath)
      sts.spec!.volumeClaimTemplates = [{ metadata: { name: 'data' } }];
    return { sts, namespace: g.namespace };
  });

t.test(
  'property: every patch applies cleanly and mutating the result again yields an empty patch',
  async (t) => {
    let patched = 0;
    fc.assert(
      fc.property(statefulSetArb, fc.constantFrom('CREATE', 'UPDATE'), ({ sts, namespace }, operation) => {
        const review = {
          operation,
          namespace,
          object: sts,
          oldObject: operation === 'UPDATE' ? sts : undefined,
        };
        const first = mutateStatefulSet(review, defaultSettings(), newStatefulSetLookups());
        // validate=true: fast-json-patch rejects paths that do not exist, as the API server would.
        const once = applied(sts, first.patch);
        if (first.patch.length > 0) patched++;
        const second = mutateStatefulSet(
          { ...review, object: once, oldObject: operation === 'UPDATE' ? once : undefined },
          defaultSettings(),
          newStatefulSetLookups(),
        );
        return second.patch.length === 0;
      }),
      { numRuns: 2000 },
    );
    t.ok(patched > 200, `the generator exercises real patches (${patched} of 2000 runs patched)`);
  },
);
