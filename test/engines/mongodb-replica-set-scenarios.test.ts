/**
 * The bootstrap hook under the events a replica set lives through — restarts, volume loss,
 * scaling, lagging DNS, a re-created StatefulSet — run for real (`/bin/sh -c <script>`) against
 * the replica-set simulator (test/support/fake-mongo-shell/simulation.ts, a stand-in for mongod).
 * Every scenario runs with the v3 hook sts-guard injects, and again with the v2 hook it injected
 * before, to show where v2 forks the set. Each ends with the two properties a user relies on:
 * never two sets named rs0 holding different data, and every acknowledged write still on the
 * primary while a majority of volumes survived.
 */
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { memberHost } from '../support/fake-mongo-shell/cluster.js';
import {
  type HookVersion,
  type PodManagementPolicy,
  ReplicaSetSimulation,
  range,
} from '../support/fake-mongo-shell/simulation.js';
import { propertyHolds } from '../support/property.js';

/** Resolves once `condition` holds (checked every 20 ms); fails the test after 30 s. */
async function until(condition: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// Each scenario starts real processes (sh, the fake shells, getent) by the hundred; a waiting hook
// runs its 30 rounds. Under a loaded full `npm test` the file needs more than tap's 120 s.
t.setTimeout(600_000);

/** An hour: the initiation window (30 minutes after CREATE) has closed. */
const LATER = 3600;

/** What the v2 hook does in a scenario: the same as v3, fork the set, or initiate a new one unasked. */
type V2Outcome = 'same' | 'fork' | 'initiates-unasked';

interface Scenario {
  name: string;
  policy: PodManagementPolicy;
  replicas?: number;
  v2: V2Outcome;
  /** Skip forming the set first (the scenario is the first start). */
  fresh?: boolean;
  /** Also run it under the legacy `mongo` shell (the single-hook tests cover both shells fully). */
  legacyShell?: boolean;
  events(sim: ReplicaSetSimulation, t: Test, version: HookVersion): Promise<void>;
}

/** The set as the first CREATE forms it, with acknowledged writes, an hour later. */
async function formed(sim: ReplicaSetSimulation, t: Test): Promise<void> {
  await sim.start(range(0, sim.replicas));
  sim.settle();
  t.equal(sim.writeMany('formed'), true, 'writes are acknowledged once the set is formed');
  sim.advanceClock(LATER);
}

const scenarios: Scenario[] = [
  {
    name: 'fresh create, OrderedReady',
    legacyShell: true,
    policy: 'OrderedReady',
    v2: 'same',
    fresh: true,
    async events(sim, t) {
      await sim.start([0, 1, 2]);
      sim.settle();
      t.same(
        sim.configHosts(),
        [0, 1, 2].map((i) => memberHost(i)),
      );
      t.equal(sim.writeMany('fresh'), true);
    },
  },
  {
    name: 'fresh create, Parallel',
    policy: 'Parallel',
    v2: 'same',
    fresh: true,
    async events(sim, t) {
      await sim.start([0, 1, 2]);
      sim.settle();
      t.same(
        [...sim.configHosts()].sort(),
        [0, 1, 2].map((i) => memberHost(i)),
      );
      t.equal(sim.writeMany('fresh'), true);
    },
  },
  {
    name: 'fresh create while DNS lags the pods (Parallel)',
    policy: 'Parallel',
    v2: 'same',
    fresh: true,
    async events(sim, t, version) {
      await sim.start([0, 1, 2], { dnsLag: 4 });
      sim.settle();
      t.same(
        [...sim.configHosts()].sort(),
        [0, 1, 2].map((i) => memberHost(i)),
      );
      if (version === 'v3') {
        t.ok(
          sim.printed('mongodb-0').some((l) => l.includes('DNS does not list this pod')),
          'ordinal 0 waited for its own DNS record before initiating',
        );
      }
    },
  },
  {
    name: 'rolling restart',
    policy: 'OrderedReady',
    v2: 'same',
    async events(sim) {
      await sim.rollingRestart();
      sim.writeMany('after');
    },
  },
  {
    name: 'full restart, OrderedReady',
    policy: 'OrderedReady',
    v2: 'same',
    async events(sim) {
      sim.stop([0, 1, 2]);
      await sim.start([0, 1, 2]);
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: "pod 0's volume lost, peers up",
    policy: 'OrderedReady',
    v2: 'same',
    async events(sim, t) {
      sim.stop([0]);
      sim.loseVolume(0);
      t.equal(sim.write('while-0-is-down'), true, 'two of three members still acknowledge');
      await sim.start([0]);
      sim.settle();
      t.same(
        sim.configHosts(),
        [0, 1, 2].map((i) => memberHost(i)),
      );
    },
  },
  {
    name: "pod 0's volume lost, peers down, back in order 1 then 2 (OrderedReady)",
    legacyShell: true,
    policy: 'OrderedReady',
    v2: 'fork',
    async events(sim, t, version) {
      sim.stop([0, 1, 2]);
      sim.loseVolume(0);
      await sim.start([0]);
      if (version === 'v3') {
        t.same(sim.replicaSets(), ['set-1'], 'pod 0 did not initiate: only the old set exists');
        t.ok(
          sim.printed('mongodb-0').some((l) => l.includes('the initiation window is closed')),
          'pod 0 says why it waits',
        );
      }
      await sim.startInOrder([1, 2]);
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: "pod 0's volume lost, peers down, back in order 2 then 1",
    policy: 'Parallel',
    v2: 'fork',
    async events(sim) {
      sim.stop([0, 1, 2]);
      sim.loseVolume(0);
      await sim.start([0]);
      await sim.startInOrder([2, 1]);
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: "pod 0's volume lost, peers come back while pod 0's hook is still waiting (Parallel)",
    policy: 'Parallel',
    v2: 'fork',
    async events(sim) {
      sim.stop([0, 1, 2]);
      sim.loseVolume(0);
      const printedBefore = sim.printed('mongodb-0').length;
      const zero = sim.start([0]);
      // "Still waiting": pod 0's hook has made its first decision alone (v2 initiates, v3 waits)
      // before the peers return. Waited for, not slept for: a loaded machine may take longer.
      await until(
        () => sim.printed('mongodb-0').length > printedBefore,
        "pod 0's hook to make its first decision",
      );
      await Promise.all([sim.start([1]), sim.start([2])]);
      await zero;
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: "pod 0's volume lost in a full restart while DNS lags the peers (Parallel)",
    policy: 'Parallel',
    v2: 'fork',
    async events(sim) {
      sim.stop([0, 1, 2]);
      sim.loseVolume(0);
      await sim.start([0, 1, 2], { dnsLag: 6 });
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: "a peer's volume lost",
    policy: 'OrderedReady',
    v2: 'same',
    async events(sim, t) {
      sim.stop([1]);
      sim.loseVolume(1);
      await sim.start([1]);
      sim.settle();
      t.same(
        sim.configHosts(),
        [0, 1, 2].map((i) => memberHost(i)),
      );
      t.same(sim.cluster().members[1]?.data, sim.cluster().members[0]?.data, 'it synced the data back');
    },
  },
  {
    name: 'scaling 3→5, 5→3 (members removed) and back to 5: removed members rejoin',
    legacyShell: true,
    policy: 'OrderedReady',
    v2: 'same',
    async events(sim, t) {
      await sim.scale(5);
      t.same(
        sim.configHosts(),
        range(0, 5).map((i) => memberHost(i)),
      );
      sim.writeMany('at-5');
      await sim.scale(3);
      t.equal(sim.write('at-3-before-removal'), true, '3 of 5 voters are a majority');
      sim.removeMember(4);
      sim.removeMember(3);
      t.same(
        sim.configHosts(),
        range(0, 3).map((i) => memberHost(i)),
      );
      sim.writeMany('at-3');
      await sim.scale(5);
      t.same(
        [...sim.configHosts()].sort(),
        range(0, 5).map((i) => memberHost(i)),
      );
      sim.writeMany('back-at-5');
    },
  },
  {
    name: 'StatefulSet deleted and re-created over its retained claims',
    policy: 'OrderedReady',
    v2: 'same',
    async events(sim) {
      sim.recreate();
      await sim.start([0, 1, 2]);
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: "StatefulSet re-created over retained claims, mongodb-0's claim gone",
    policy: 'OrderedReady',
    v2: 'fork',
    async events(sim) {
      sim.recreate();
      sim.loseVolume(0);
      await sim.start([0, 1, 2]);
      sim.settle();
      sim.writeMany('after');
    },
  },
  {
    name: 'every volume lost: only the explicit reset initiates a new set',
    legacyShell: true,
    policy: 'OrderedReady',
    v2: 'initiates-unasked',
    async events(sim, t, version) {
      sim.stop([0, 1, 2]);
      for (const i of [0, 1, 2]) sim.loseVolume(i);
      // Nothing survived a majority, so nothing acknowledged can survive.
      sim.acknowledged = [];
      await sim.start([0, 1, 2]);
      sim.settle();
      if (version === 'v2') {
        t.same(sim.replicaSets().length, 1, 'v2 initiated a new, empty set without being asked');
        return;
      }
      t.same(sim.replicaSets(), [], 'no set is initiated by accident');
      t.ok(
        sim.printed('mongodb-0').some((l) => l.includes('sts-guard.io/reset-replica-set')),
        'pod 0 names the reset annotation',
      );
      sim.annotateReset('2026-12-01-restore');
      sim.stop([0, 1, 2]);
      await sim.start([0, 1, 2]);
      sim.settle();
      t.equal(sim.replicaSets().length, 1, 'the reset initiated one new set');
      t.same(
        sim.configHosts(),
        [0, 1, 2].map((i) => memberHost(i)),
      );
      sim.writeMany('after-reset');
    },
  },
];

/** The two properties every run must keep, and a primary that serves all members. */
function holds(t: Test, sim: ReplicaSetSimulation): void {
  t.equal(
    sim.replicaSets().length,
    1,
    `one replica set rs0 on the volumes (${sim.replicaSets().join(', ')})`,
  );
  t.equal(sim.primaries().length, 1, 'one primary');
  t.same(sim.missingWrites(), [], 'every acknowledged write is on the primary');
}

for (const version of ['v3', 'v2'] as const) {
  // v3 runs under both shells; v2 under mongosh is enough to show what it does.
  for (const shell of version === 'v3' ? (['mongosh', 'mongo'] as const) : (['mongosh'] as const)) {
    t.test(`${version} hook, ${shell}`, { jobs: 3 }, async (t) => {
      for (const scenario of scenarios) {
        if (shell === 'mongo' && !scenario.legacyShell) continue;
        const v2Differs = version === 'v2' && scenario.v2 !== 'same';
        const expectation =
          version === 'v3' || scenario.v2 === 'same'
            ? 'one set, no acknowledged write lost'
            : scenario.v2 === 'fork'
              ? 'FORKS the set'
              : 'initiates a new set without being asked';
        t.test(`${scenario.name}: ${expectation}`, async (t) => {
          const sim = ReplicaSetSimulation.create({
            replicas: scenario.replicas ?? 3,
            podManagementPolicy: scenario.policy,
            hook: version,
            shell,
          });
          t.teardown(() => sim.remove());
          if (!scenario.fresh) await formed(sim, t);
          await scenario.events(sim, t, version);
          if (!v2Differs) return holds(t, sim);
          if (scenario.v2 === 'fork') {
            t.ok(sim.replicaSets().length > 1, `two sets named rs0: ${sim.replicaSets().join(', ')}`);
            t.not(sim.missingWrites(), [], 'acknowledged writes are missing from a primary');
          }
        });
      }
    });
  }
}

type Event =
  | { kind: 'restart'; ordinal: number }
  | { kind: 'lose-volume'; ordinal: number }
  | { kind: 'full-restart' }
  | { kind: 'full-restart-losing'; ordinal: number }
  | { kind: 'restart-with-dns-lag'; ordinal: number }
  | { kind: 'write' };

const ordinal = fc.integer({ min: 0, max: 2 });
const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('restart' as const), ordinal }),
  fc.record({ kind: fc.constant('lose-volume' as const), ordinal }),
  fc.record({ kind: fc.constant('full-restart' as const) }),
  fc.record({ kind: fc.constant('full-restart-losing' as const), ordinal }),
  fc.record({ kind: fc.constant('restart-with-dns-lag' as const), ordinal }),
  fc.record({ kind: fc.constant('write' as const) }),
);

async function apply(sim: ReplicaSetSimulation, e: Event, n: number): Promise<void> {
  switch (e.kind) {
    case 'restart':
      sim.stop([e.ordinal]);
      await sim.start([e.ordinal]);
      break;
    case 'lose-volume':
      sim.stop([e.ordinal]);
      sim.loseVolume(e.ordinal);
      await sim.start([e.ordinal]);
      break;
    case 'full-restart':
      sim.stop([0, 1, 2]);
      await sim.start([0, 1, 2]);
      break;
    case 'full-restart-losing':
      sim.stop([0, 1, 2]);
      sim.loseVolume(e.ordinal);
      await sim.start([0, 1, 2]);
      break;
    case 'restart-with-dns-lag':
      sim.stop([e.ordinal]);
      await sim.start([e.ordinal], { dnsLag: 3 });
      break;
    case 'write':
      sim.write(`random-${n}`);
      break;
  }
  sim.settle();
}

t.test(
  'property: random sequences of restarts, volume losses (one at a time) and lagging DNS never fork the v3 set or lose an acknowledged write',
  async (t) => {
    await propertyHolds(
      t,
      'no counterexample: one replica set, one primary, every acknowledged write kept',
      fc.asyncProperty(
        fc.constantFrom<PodManagementPolicy>('OrderedReady', 'Parallel'),
        fc.array(event, { minLength: 2, maxLength: 4 }),
        async (policy, events) => {
          const sim = ReplicaSetSimulation.create({ replicas: 3, podManagementPolicy: policy, hook: 'v3' });
          try {
            await sim.start([0, 1, 2]);
            sim.settle();
            sim.writeMany('formed');
            sim.advanceClock(LATER);
            for (const [n, e] of events.entries()) {
              await apply(sim, e, n);
              if (sim.replicaSets().length !== 1) throw new Error(`forked after ${JSON.stringify(e)}`);
            }
            sim.write('final');
            const missing = sim.missingWrites();
            if (sim.primaries().length !== 1 || missing.length > 0) {
              throw new Error(
                `primaries ${sim.primaries().join(', ')}; missing writes ${missing.join(', ')}`,
              );
            }
            return true;
          } finally {
            sim.remove();
          }
        },
      ),
      6,
    );
  },
);
