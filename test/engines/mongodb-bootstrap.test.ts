/**
 * The replica-set bootstrap hook sts-guard injects, run for real: the exact `['/bin/sh', '-c',
 * script]` the mutation puts in the pod template, under dash and bash, with fake `mongosh` and
 * legacy `mongo` executables (test/support/fake-mongo-shell) that execute the hook's JS against
 * a simulated replica set. What this cannot show: real mongod elections and timing, DNS, auth
 * and TLS handshakes; the simulated answers follow mongod's replication code and error codes.
 */
import { spawnSync } from 'node:child_process';
import { transformSync } from 'esbuild';
import t, { type Test } from 'tap';
import { BOOTSTRAP_JS } from '../../src/engines/mongodb/bootstrap.js';
import {
  type MemberNaming,
  memberHost,
  runningReplicaSet,
  type ShellFlavour,
  type SimulatedCluster,
  simulatedCluster,
  simulatedMember,
} from '../support/fake-mongo-shell/cluster.js';
import { type HookRun, type RunOptions, sandbox } from '../support/fake-mongo-shell/harness.js';
import {
  commands,
  configHosts,
  injectedHook,
  interpreters,
  memberOf,
  printed,
} from '../support/fake-mongo-shell/scenario.js';
import { defaultSettings, replicaSet } from '../support/fixtures.js';

const hook = injectedHook();
const host = (ordinal: number) => memberHost(ordinal);
const pod = (ordinal: number) => `mongodb-${ordinal}`;
/** A pod that does not exist (yet): no DNS record, nothing listening. */
const absent = (ordinal: number) => simulatedMember(ordinal, { resolves: false, up: false });

t.test('the script is valid POSIX sh and its JS is plain ES5', async (t) => {
  const script = hook[2] ?? '';
  t.same(hook.slice(0, 2), ['/bin/sh', '-c']);
  for (const { path, name } of interpreters()) {
    const check = spawnSync(path, ['-n', '-c', script], { encoding: 'utf8' });
    t.equal(check.status, 0, `${name} -n accepts it ${check.stderr}`);
  }
  const posix = spawnSync('bash', ['--posix', '-n', '-c', script], { encoding: 'utf8' });
  if (!posix.error) t.equal(posix.status, 0, `bash --posix -n accepts it ${posix.stderr}`);
  const shellcheck = spawnSync('shellcheck', ['--shell=sh', '-'], { input: script, encoding: 'utf8' });
  if (shellcheck.error) t.comment('shellcheck is not installed; skipped');
  else t.equal(shellcheck.status, 0, `shellcheck --shell=sh finds nothing:\n${shellcheck.stdout}`);
  // The legacy `mongo` shell of MongoDB ≤ 4.4 is why the JS is ES5: lowering it to ES5 must change nothing.
  const es5 = transformSync(BOOTSTRAP_JS, { loader: 'js', target: 'es5' }).code;
  const esnext = transformSync(BOOTSTRAP_JS, { loader: 'js', target: 'esnext' }).code;
  t.equal(es5, esnext, 'esbuild needs no ES2015+ lowering');
});

t.test(
  'the hook does not contain the replica count: StatefulSets differing only in replicas get the same hook',
  async (t) => {
    t.same(injectedHook(replicaSet({ replicas: 3 })), injectedHook(replicaSet({ replicas: 5 })));
    t.same(injectedHook(replicaSet({ replicas: 1 })), injectedHook(replicaSet({ replicas: 11 })));
  },
);

/** The part of tap's Test a scenario uses. */
interface Assertions {
  teardown(cleanup: () => void): void;
  same(found: unknown, wanted: unknown): boolean;
}

/** Runs the hook in a fresh sandbox with only `shell` installed, under `interpreter`. */
function runner(interpreter: string, shell: ShellFlavour) {
  return async (
    t: Assertions,
    cluster: SimulatedCluster,
    options: RunOptions,
    command: string[] = hook,
  ): Promise<{ run: HookRun; after: SimulatedCluster }> => {
    const box = sandbox(cluster, [shell]);
    t.teardown(() => box.remove());
    const run = await box.run(command, { interpreter, ...options });
    const after = box.cluster();
    // Every connection and command came from the one shell installed.
    t.same([...new Set(after.events.map((e) => e.shell))], after.events.length > 0 ? [shell] : []);
    return { run, after };
  };
}

type Run = ReturnType<typeof runner>;

interface Scenario {
  name: string;
  check(t: Test, run: Run): Promise<void>;
}

const output = (run: HookRun) => run.stdout + run.stderr;

const scenarios: Scenario[] = [
  {
    name: 'first start of ordinal 0 (no other pod yet) initiates a set of itself and exits 0',
    async check(t, run) {
      const { run: hookRun, after } = await run(
        t,
        simulatedCluster([simulatedMember(0), absent(1), absent(2)]),
        {
          pod: pod(0),
        },
      );
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(
        commands(after, 'replSetInitiate').map((c) => c.body),
        [
          {
            _id: 'rs0',
            members: [
              { _id: 0, host: 'mongodb-0.mongodb-headless.grade-submission.svc.cluster.local:27017' },
            ],
          },
        ],
      );
      t.same(configHosts(after, pod(0)), [host(0)]);
      t.same(after.primaries, [host(0)]);
    },
  },
  {
    name: 'with all pods started at once (Parallel), ordinal 0 initiates with itself only',
    async check(t, run) {
      const { run: hookRun, after } = await run(
        t,
        simulatedCluster([simulatedMember(0), simulatedMember(1), simulatedMember(2)]),
        { pod: pod(0) },
      );
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(configHosts(after, pod(0)), [host(0)]);
      t.equal(memberOf(after, pod(1)).config, null, 'peers are added by their own hooks');
    },
  },
  {
    name: 'ordinal 1 joins through the primary: replSetReconfig adds exactly its host, version bumped',
    async check(t, run) {
      const before = runningReplicaSet({
        memberOrdinals: [0],
        primaryOrdinal: 0,
        version: 1,
        extraPods: [simulatedMember(1)],
      });
      const { run: hookRun, after } = await run(t, before, { pod: pod(1) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      const reconfigs = commands(after, 'replSetReconfig');
      t.same(
        reconfigs.map((c) => c.to),
        [host(0)],
      );
      const current = memberOf(before, pod(0)).config;
      t.same(reconfigs[0]?.body, {
        ...current,
        version: 2,
        members: [
          ...(current?.members ?? []),
          { _id: 1, host: 'mongodb-1.mongodb-headless.grade-submission.svc.cluster.local:27017' },
        ],
      });
      t.same(configHosts(after, pod(1)), [host(0), host(1)], 'the new member received the config');
      t.same(commands(after, 'replSetInitiate'), []);
    },
  },
  {
    name: 'ordinal 2 joins through ordinal 1 when ordinal 1 is primary',
    async check(t, run) {
      const before = runningReplicaSet({
        memberOrdinals: [0, 1],
        primaryOrdinal: 1,
        extraPods: [simulatedMember(2)],
      });
      const { run: hookRun, after } = await run(t, before, { pod: pod(2) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(
        commands(after, 'replSetReconfig').map((c) => c.to),
        [host(1)],
      );
      t.same(configHosts(after, pod(1)), [host(0), host(1), host(2)]);
      t.equal(memberOf(after, pod(1)).config?.version, 3);
    },
  },
  {
    name: 'ordinal 2 joins through ordinal 1 while ordinal 0 is gone',
    async check(t, run) {
      const before = runningReplicaSet({
        memberOrdinals: [0, 1],
        primaryOrdinal: 1,
        extraPods: [simulatedMember(2)],
      });
      Object.assign(memberOf(before, pod(0)), { resolves: false, up: false });
      const { run: hookRun, after } = await run(t, before, { pod: pod(2) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(configHosts(after, pod(1)), [host(0), host(1), host(2)]);
    },
  },
  {
    name: 'running the hook again on a member is a no-op that exits 0',
    async check(t, run) {
      for (const ordinal of [0, 1, 2]) {
        const before = runningReplicaSet({ memberOrdinals: [0, 1, 2], primaryOrdinal: 0 });
        const { run: hookRun, after } = await run(t, before, { pod: pod(ordinal) });
        t.equal(hookRun.exitCode, 0, output(hookRun));
        t.same(
          after.members.map((m) => m.config),
          before.members.map((m) => m.config),
        );
        t.same([...new Set(commands(after).map((c) => c.name))], ['ping', 'replSetGetStatus']);
      }
    },
  },
  {
    name: 'ordinal 0 restarting with an empty data dir while the set runs elsewhere does not initiate a second set',
    async check(t, run) {
      const before = runningReplicaSet({ memberOrdinals: [0, 1, 2], primaryOrdinal: 1 });
      memberOf(before, pod(0)).config = null;
      const { run: hookRun, after } = await run(t, before, { pod: pod(0) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(commands(after, 'replSetInitiate'), []);
      t.same(commands(after, 'replSetReconfig'), [], 'it is still in the config; heartbeats resync it');
      t.same(configHosts(after, pod(1)), [host(0), host(1), host(2)]);
    },
  },
  {
    name: 'ordinal 0 with an empty data dir, while its peers still name it primary, waits for the election',
    async check(t, run) {
      const before = runningReplicaSet({ memberOrdinals: [0, 1, 2], primaryOrdinal: 0 });
      memberOf(before, pod(0)).config = null;
      before.election = { winner: host(1), remainingIsMasterCalls: 4 };
      const { run: hookRun, after } = await run(t, before, { pod: pod(0) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(commands(after, 'replSetInitiate'), []);
      t.same(after.primaries, [host(1)]);
    },
  },
  {
    name: 'ordinal 0 restarting with its data while mongod still loads its config, no peer up yet: exits 0, no new set',
    async check(t, run) {
      // A whole-StatefulSet restart with OrderedReady: pod 1 is only created once pod 0's hook is done.
      const before = runningReplicaSet({ memberOrdinals: [0, 1, 2], primaryOrdinal: 0 });
      before.primaries = [];
      memberOf(before, pod(0)).startingUp = 2;
      Object.assign(memberOf(before, pod(1)), { resolves: false, up: false });
      Object.assign(memberOf(before, pod(2)), { resolves: false, up: false });
      const { run: hookRun, after } = await run(t, before, { pod: pod(0) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(
        commands(after, 'replSetInitiate').filter((c) => c.ok),
        [],
      );
      t.same(configHosts(after, pod(0)), [host(0), host(1), host(2)]);
    },
  },
  {
    name: 'a member whose config arrives while no primary exists exits 0 once it has it',
    async check(t, run) {
      // A two-member set that lost ordinal 0's data: ordinal 1 alone cannot elect; the config reaches 0 by heartbeat.
      const before = runningReplicaSet({ memberOrdinals: [0, 1], primaryOrdinal: 0 });
      before.primaries = [];
      memberOf(before, pod(0)).startingUp = 3;
      const { run: hookRun, after } = await run(t, before, { pod: pod(0) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(commands(after, 'replSetInitiate'), []);
    },
  },
  {
    name: 'ordinal 1 starting while ordinal 0 is still being elected waits, then joins',
    async check(t, run) {
      const before = runningReplicaSet({
        memberOrdinals: [0],
        primaryOrdinal: 0,
        version: 1,
        extraPods: [simulatedMember(1)],
      });
      before.primaries = [];
      before.election = { winner: host(0), remainingIsMasterCalls: 3 };
      const { run: hookRun, after } = await run(t, before, { pod: pod(1) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(configHosts(after, pod(0)), [host(0), host(1)]);
      t.ok(printed(after, pod(1)).some((line) => line.includes('waiting for a primary')));
    },
  },
  {
    name: 'a member that was removed from the set (REMOVED) asks the primary to add it back',
    async check(t, run) {
      const before = runningReplicaSet({ memberOrdinals: [0, 1, 2], primaryOrdinal: 0 });
      // The primary's heartbeats gave every member the config without ordinal 2.
      for (const m of before.members) {
        if (!m.config) continue;
        m.config.members = m.config.members.filter((c) => c.host !== host(2));
        m.config.version += 1;
      }
      const { run: hookRun, after } = await run(t, before, { pod: pod(2) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(configHosts(after, pod(0)), [host(0), host(1), host(2)]);
      t.same(commands(after, 'replSetInitiate'), []);
    },
  },
  {
    name: 'the 8th member joins as non-voting (votes 0, priority 0), and so does the 9th',
    async check(t, run) {
      const before = runningReplicaSet({
        memberOrdinals: [0, 1, 2, 3, 4, 5, 6],
        primaryOrdinal: 0,
        extraPods: [simulatedMember(7), simulatedMember(8)],
      });
      const eighth = await run(t, before, { pod: pod(7) });
      t.equal(eighth.run.exitCode, 0, output(eighth.run));
      t.same(commands(eighth.after, 'replSetReconfig').at(-1)?.body, {
        ...memberOf(before, pod(0)).config,
        version: 8,
        members: [
          ...(memberOf(before, pod(0)).config?.members ?? []),
          { _id: 7, host: host(7), votes: 0, priority: 0 },
        ],
      });
      const ninth = await run(t, eighth.after, { pod: pod(8) });
      t.equal(ninth.run.exitCode, 0, output(ninth.run));
      t.match(
        memberOf(ninth.after, pod(0)).config?.members.find((m) => m.host === host(8)),
        { _id: 8, votes: 0, priority: 0 },
      );
    },
  },
  {
    name: 'members are addressed as <pod>.<serviceName>.<namespace>.svc.<clusterDomain>:<port>',
    async check(t, run) {
      const naming: MemberNaming = {
        statefulSet: 'grades',
        serviceName: 'db',
        namespace: 'team-a',
        clusterDomain: 'corp.internal',
        port: 27018,
      };
      const command = injectedHook(
        replicaSet({ name: 'grades', serviceName: 'db', args: ['--replSet', 'rs0', '--port', '27018'] }),
        'team-a',
        { ...defaultSettings(), clusterDomain: 'corp.internal' },
      );
      const before = runningReplicaSet({
        memberOrdinals: [0],
        primaryOrdinal: 0,
        version: 1,
        naming,
        extraPods: [simulatedMember(1, {}, naming)],
      });
      const { run: hookRun, after } = await run(t, before, { pod: 'grades-1' }, command);
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(configHosts(after, 'grades-0'), [
        'grades-0.db.team-a.svc.corp.internal:27018',
        'grades-1.db.team-a.svc.corp.internal:27018',
      ]);
    },
  },
  {
    name: 'a pod whose hostname is its FQDN (setHostnameAsFQDN) still finds its ordinal',
    async check(t, run) {
      const before = runningReplicaSet({
        memberOrdinals: [0],
        primaryOrdinal: 0,
        version: 1,
        extraPods: [simulatedMember(1)],
      });
      const { run: hookRun, after } = await run(t, before, {
        pod: pod(1),
        hostname: 'mongodb-1.mongodb-headless.grade-submission.svc.cluster.local',
      });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.same(configHosts(after, pod(0)), [host(0), host(1)]);
    },
  },
  {
    name: 'with access control on, the hook says it cannot act and exits 0 instead of crash-looping mongod',
    async check(t, run) {
      const before = runningReplicaSet({ memberOrdinals: [0, 1, 2], primaryOrdinal: 0 });
      for (const m of before.members) m.auth = true;
      const { run: hookRun, after } = await run(t, before, { pod: pod(1) });
      t.equal(hookRun.exitCode, 0, output(hookRun));
      t.ok(printed(after, pod(1)).some((line) => line.includes('requires authentication')));
      t.same(
        after.members.map((m) => m.config),
        before.members.map((m) => m.config),
      );
    },
  },
];

for (const interpreter of interpreters()) {
  for (const shell of ['mongosh', 'mongo'] as const) {
    t.test(`${shell} under ${interpreter.name}`, { jobs: 4 }, async (t) => {
      const run = runner(interpreter.path, shell);
      for (const scenario of scenarios) t.test(scenario.name, (t) => scenario.check(t, run));
    });
  }
}
