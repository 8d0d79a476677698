/**
 * The bootstrap hook's waiting and its behaviour when every pod starts at once, run for real
 * (`/bin/sh -c <script>`) against the fake mongo shells; see mongodb-bootstrap.test.ts. The fake
 * `sleep` on PATH only records its argument, so the script's 120 × `sleep 1` wait runs unchanged.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import {
  memberHost,
  runningReplicaSet,
  simulatedCluster,
  simulatedMember,
} from '../support/fake-mongo-shell/cluster.js';
import { sandbox } from '../support/fake-mongo-shell/harness.js';
import { commands, configHosts, injectedHook, interpreters } from '../support/fake-mongo-shell/scenario.js';

const hook = injectedHook();

t.test(
  'when the local mongod never answers, the hook gives up after its wait loop and exits non-zero',
  async (t) => {
    for (const { path, name } of interpreters()) {
      const box = sandbox(simulatedCluster([simulatedMember(0, { up: false })]), ['mongosh']);
      t.teardown(() => box.remove());
      const run = await box.run(hook, { pod: 'mongodb-0', interpreter: path });
      const after = box.cluster();
      t.not(run.exitCode, 0, `${name}: exit status`);
      t.equal(run.sleeps.length, 119, `${name}: slept between its 120 tries`);
      t.same([...new Set(run.sleeps)], ['1'], `${name}: one second each time`);
      t.equal(after.events.filter((e) => e.kind === 'connect').length, 120, `${name}: 120 tries`);
      t.same(commands(after), [], `${name}: no replica-set command was sent`);
    }
  },
);

t.test('a mongod that needs a few seconds to start is waited for, then the set is initiated', async (t) => {
  for (const shell of ['mongosh', 'mongo'] as const) {
    const box = sandbox(simulatedCluster([simulatedMember(0, { refusesConnections: 5 })]), [shell]);
    t.teardown(() => box.remove());
    const run = await box.run(hook, { pod: 'mongodb-0' });
    t.equal(run.exitCode, 0, `${shell}: ${run.stdout}${run.stderr}`);
    t.equal(run.sleeps.length, 5, `${shell}: slept once per refused try`);
    t.same(configHosts(box.cluster(), 'mongodb-0'), [memberHost(0)]);
  }
});

t.test('mongosh is preferred when both shells are installed', async (t) => {
  const box = sandbox(
    runningReplicaSet({
      memberOrdinals: [0],
      primaryOrdinal: 0,
      version: 1,
      extraPods: [simulatedMember(1)],
    }),
    ['mongosh', 'mongo'],
  );
  t.teardown(() => box.remove());
  const run = await box.run(hook, { pod: 'mongodb-1' });
  t.equal(run.exitCode, 0, run.stdout + run.stderr);
  t.same([...new Set(box.cluster().events.map((e) => e.shell))], ['mongosh']);
});

t.test('all pods starting at once (podManagementPolicy: Parallel) form one set of three', async (t) => {
  for (const shell of ['mongosh', 'mongo'] as const) {
    const box = sandbox(simulatedCluster([0, 1, 2].map((ordinal) => simulatedMember(ordinal))), [shell]);
    t.teardown(() => box.remove());
    // Slower pacing (2 s → 100 ms) so the joiners' 30 attempts outlast ordinal 0's start on a busy machine.
    const runs = await Promise.all(
      [0, 1, 2].map((ordinal) =>
        box.run(hook, { pod: `mongodb-${ordinal}`, sleepScale: 0.05, shSleepSeconds: 0.1 }),
      ),
    );
    t.same(
      runs.map((r) => r.exitCode),
      [0, 0, 0],
      `${shell}: ${runs.map((r) => r.stdout + r.stderr).join('\n')}`,
    );
    const after = box.cluster();
    t.equal(commands(after, 'replSetInitiate').filter((c) => c.ok).length, 1, `${shell}: initiated once`);
    t.same(
      [...(configHosts(after, 'mongodb-0') ?? [])].sort(),
      [memberHost(0), memberHost(1), memberHost(2)],
      `${shell}: one set of three`,
    );
    t.same(
      after.members.map((m) => m.config?.version),
      [3, 3, 3],
      `${shell}: every member has the final config`,
    );
  }
});

t.test('the fake shells answer like the real ones where the hook depends on it', async (t) => {
  // Guards the harness itself.
  const box = sandbox(simulatedCluster([simulatedMember(0), simulatedMember(1, { resolves: false })]), [
    'mongosh',
    'mongo',
  ]);
  t.teardown(() => box.remove());
  const env = {
    FAKE_MONGO_CLUSTER: `${box.dir}/cluster.json`,
    FAKE_POD_NAME: 'mongodb-0',
    PATH: '/usr/bin:/bin',
  };
  const shell = (name: string, args: string[]) =>
    spawnSync(`${box.dir}/bin/${name}`, args, { env, encoding: 'utf8' });
  const evaluate = (name: string, js: string) => shell(name, ['--quiet', '--port', '27017', '--eval', js]);

  t.not(shell('mongosh', ['--bogus']).status, 0, 'unknown options are refused');
  t.equal(evaluate('mongosh', '1').status, 0);
  t.equal(shell('mongosh', ['--quiet', '--port', '27018', '--eval', '1']).status, 1, 'wrong port: exit 1');
  t.equal(evaluate('mongosh', 'db.adminCommand({ ping: 1 }).ok').stdout.trim(), '1');

  const status = 'db.getMongo().getDB("admin").runCommand({ replSetGetStatus: 1 })';
  const mongoshAnswer = evaluate(
    'mongosh',
    `try { ${status}; print("returned") } catch (e) { print(e.name, e.code) }`,
  );
  t.equal(mongoshAnswer.stdout.trim(), 'MongoServerError 94', 'mongosh throws on ok: 0');
  const legacyAnswer = evaluate('mongo', `var r = ${status}; print(r.ok, r.code, r.codeName)`);
  t.equal(legacyAnswer.stdout.trim(), '0 94 NotYetInitialized', 'legacy mongo returns the document');

  const unresolvable = memberHost(1);
  for (const name of ['mongosh', 'mongo']) {
    const spec = name === 'mongosh' ? `mongodb://${unresolvable}/?directConnection=true` : unresolvable;
    const answer = evaluate(
      name,
      `try { new Mongo("${spec}"); print("connected") } catch (e) { print("threw") }`,
    );
    t.equal(answer.stdout.trim(), 'threw', `${name}: new Mongo() throws for a host that does not resolve`);
  }
  // Without directConnection=true mongosh's driver discovers the set and sends commands to its primary.
  const set = sandbox(runningReplicaSet({ memberOrdinals: [0, 1], primaryOrdinal: 1 }), ['mongosh']);
  t.teardown(() => set.remove());
  const me = (uri: string) =>
    spawnSync(
      `${set.dir}/bin/mongosh`,
      ['--quiet', '--eval', `new Mongo("${uri}").getDB("admin").runCommand({ isMaster: 1 }).me`],
      {
        env: { ...env, FAKE_MONGO_CLUSTER: `${set.dir}/cluster.json` },
        encoding: 'utf8',
      },
    ).stdout.trim();
  t.equal(me(`mongodb://${memberHost(0)}/?directConnection=true`), memberHost(0));
  t.equal(me(`mongodb://${memberHost(0)}/`), memberHost(1));

  const quit = evaluate('mongo', 'quit(3)');
  t.equal(quit.status, 3, 'quit(code) is the exit status');
});
