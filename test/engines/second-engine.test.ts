import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import type * as Pipeline from '../../src/pipeline/statefulset.js';
import type * as Policy from '../../src/policy/index.js';
import {
  defaultSettings,
  FIXED_NOW,
  newStatefulSetLookups,
  replicaSet,
  service,
} from '../support/fixtures.js';

/**
 * The README's claim: a second database engine is a folder in src/engines/ plus its registration
 * in src/engines/index.ts, and the policy works for it unchanged. Proven on a copy of src/ with
 * exactly that change: test/fixtures/engines/testdb/ (a test-only engine) as src/engines/testdb/,
 * one import and one list entry. Nothing else in the copy differs from src/.
 */
const root = join(import.meta.dirname, '../..');

interface Copy {
  dir: string;
  /** src/engines/index.ts before and after the registration. */
  registry: { before: string; after: string };
  policy: typeof Policy;
  pipeline: typeof Pipeline;
}

async function copyWithSecondEngine(): Promise<Copy> {
  // Inside the repository, so the copy resolves the same node_modules.
  const dir = await mkdtemp(join(root, 'test/.second-engine-'));
  await cp(join(root, 'src'), join(dir, 'src'), { recursive: true });
  await cp(join(root, 'test/fixtures/engines/testdb'), join(dir, 'src/engines/testdb'), { recursive: true });
  const engineFile = join(dir, 'src/engines/testdb/index.ts');
  // The fixture imports the interface from src/ so that it is type-checked where it lives; in place it is a sibling.
  await writeFile(
    engineFile,
    (await readFile(engineFile, 'utf8')).replace('../../../../src/engines/types.js', '../types.js'),
  );
  const registryFile = join(dir, 'src/engines/index.ts');
  const before = await readFile(registryFile, 'utf8');
  const after = before
    .replace(
      "import { mongodb } from './mongodb/index.js';",
      "import { mongodb } from './mongodb/index.js';\nimport { testdb } from './testdb/index.js';",
    )
    .replace('= [mongodb];', '= [mongodb, testdb];');
  await writeFile(registryFile, after);
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules')).catch(() => undefined);
  return {
    dir,
    registry: { before, after },
    policy: (await import(join(dir, 'src/policy/index.ts'))) as typeof Policy,
    pipeline: (await import(join(dir, 'src/pipeline/statefulset.ts'))) as typeof Pipeline,
  };
}

const copy = copyWithSecondEngine();
t.teardown(async () => rm((await copy).dir, { recursive: true, force: true }));

t.test('the copy differs from src/ by the folder and its registration only', async (t) => {
  const { registry } = await copy;
  t.not(registry.after, registry.before, 'src/engines/index.ts registers testdb');
  const added = registry.after.split('\n').filter((line) => !registry.before.split('\n').includes(line));
  t.same(added, [
    "import { testdb } from './testdb/index.js';",
    'export const engines: readonly DatabaseEngine[] = [mongodb, testdb];',
  ]);
});

/** A 3-member TestDB StatefulSet, shaped like the MongoDB fixtures. */
function testdbSet(args: string[]): V1StatefulSet {
  const sts = replicaSet();
  const container = sts.spec?.template?.spec?.containers?.[0];
  if (!container) throw new Error('fixture without a container');
  if (!sts.metadata || !sts.spec) throw new Error('fixture without metadata or spec');
  sts.metadata.name = 'testdb';
  sts.spec.serviceName = 'testdb-headless';
  container.name = 'testdb';
  container.image = 'registry.example.com/testdb:2.1';
  container.args = args;
  delete container.command;
  return sts;
}

const headless = { outcome: 'found', service: service('testdb-headless') } as const;
const create = (object: V1StatefulSet) => ({
  operation: 'CREATE' as const,
  namespace: 'grade-submission',
  object,
});

t.test('the second engine is recognised, and its standalone server denied in its own words', async (t) => {
  const { policy } = await copy;
  const decision = policy.validateStatefulSet(
    create(testdbSet(['--port=7000'])),
    defaultSettings(),
    headless,
  );
  t.equal(decision.allowed, false);
  t.match(decision.message, 'TestDB with 3 replicas must run as a replica set behind a headless Service');
  t.match(
    decision.message,
    'starts TestDB without --cluster, so each of the 3 pods keeps its own, different data',
  );
  t.match(decision.message, 'Fix: add --cluster=cluster0 to the args of container "testdb"');
  t.notMatch(decision.message, /mongo|replSet/i, 'no MongoDB wording leaks into another engine');
});

t.test('a clustered one is admitted and gets its bootstrap hook and storage at its data path', async (t) => {
  const { policy } = await copy;
  const sts = testdbSet(['--cluster=c1', '--port=7100']);
  t.equal(policy.validateStatefulSet(create(sts), defaultSettings(), headless).allowed, true);
  const mutation = policy.mutateStatefulSet(create(sts), defaultSettings(), newStatefulSetLookups());
  t.same(mutation.injected, ['bootstrap-hook', 'storage']);
  const hook = mutation.patch.find((op) => op.path.endsWith('/lifecycle'))?.value as {
    postStart: { exec: { command: string[] } };
  };
  t.match(
    hook.postStart.exec.command[2],
    /^# testdb-cluster-bootstrap v1\ntestdb-join c1 testdb-headless \d+$/,
  );
  t.match(mutation.patch, [
    {},
    { path: '/spec/volumeClaimTemplates', value: [{ metadata: { name: 'testdb-data' } }] },
    { value: [{ mountPath: '/var/lib/testdb' }] },
  ]);
});

t.test(
  'the pipeline runs it end to end: the client-routing warning names its connection string',
  async (t) => {
    const { pipeline } = await copy;
    const sts = testdbSet(['--cluster=c1', '--port=7100']);
    const clusterIp = service('testdb', 'grade-submission', '10.96.0.12');
    const admitted = await pipeline.admitStatefulSet(create(sts), {
      settings: defaultSettings(),
      services: {
        lookup: async () => headless,
        list: async () => ({ outcome: 'found', services: [clusterIp] }),
      },
      claims: { list: async () => ({ outcome: 'found', claims: [] }) },
      clock: () => FIXED_NOW * 1000,
    });
    t.equal(admitted.engine, 'testdb');
    t.equal(admitted.decision.allowed, true);
    const [routing] = admitted.decision.warnings.filter((w) => w.includes('[client-routing]'));
    t.match(
      routing,
      '(TestDB replica set "c1", 3 members), so a client connecting through it reaches a follower',
    );
    t.match(routing, 'testdb://testdb-0.testdb-headless.grade-submission.svc.cluster.local:7100,');
  },
);

t.test('MongoDB is judged as before beside it', async (t) => {
  const { policy } = await copy;
  const mongodbHeadless = { outcome: 'found', service: service('mongodb-headless') } as const;
  const decision = policy.validateStatefulSet(create(replicaSet()), defaultSettings(), mongodbHeadless);
  t.equal(decision.allowed, true);
  t.equal(policy.detectDatabase(replicaSet())?.engine.id, 'mongodb');
});
