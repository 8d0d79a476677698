import type { V1Lease } from '@kubernetes/client-node';
import t from 'tap';
import { DEFAULT_LEASE_TIMING, leaseStep, type Observed } from '../../src/audit/lease.js';

/**
 * The Lease decision of one try, as client-go's leaderelection makes it: expiry is timed on the
 * candidate's own clock from when it last saw the record change, never by comparing renewTime
 * with its clock, so replicas need not agree on the time.
 */

const timing = DEFAULT_LEASE_TIMING; // 15 s, 10 s, 2 s
const at = new Date('2026-12-03T12:00:00Z');

const lease = (spec: V1Lease['spec'], resourceVersion = '5'): V1Lease => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name: 'sts-guard-audit', namespace: 'sts-guard', resourceVersion },
  spec,
});

const heldBy = (holder: string, renewTime: string, transitions = 0) =>
  lease({
    holderIdentity: holder,
    leaseDurationSeconds: 15,
    acquireTime: new Date('2026-12-03T11:00:00Z'),
    renewTime: new Date(renewTime),
    leaseTransitions: transitions,
  });

t.test('no Lease yet: create it, holding it', async (t) => {
  const { step } = leaseStep(undefined, 'audit-a', undefined, 0, timing, at);
  t.same(step, {
    action: 'create',
    spec: {
      holderIdentity: 'audit-a',
      leaseDurationSeconds: 15,
      acquireTime: at,
      renewTime: at,
      leaseTransitions: 0,
    },
  });
});

t.test('held by another replica that renews: wait, however far apart the clocks are', async (t) => {
  // The holder's renewTime is a day in the past by our clock: it does not matter, only change does.
  let observed: Observed | undefined;
  let now = 1_000_000;
  for (let renewal = 0; renewal < 20; renewal++) {
    const decided = leaseStep(
      heldBy('audit-a', `2026-12-02T12:00:${String(renewal).padStart(2, '0')}Z`),
      'audit-b',
      observed,
      now,
      timing,
      at,
    );
    t.same(decided.step, { action: 'wait', holder: 'audit-a' });
    observed = decided.observed;
    now += 2_000;
  }
});

t.test(
  'held by another replica that stopped renewing: taken once leaseDurationSeconds have passed unchanged',
  async (t) => {
    const stale = heldBy('audit-a', '2026-12-03T11:59:59Z', 3);
    const first = leaseStep(stale, 'audit-b', undefined, 1_000_000, timing, at);
    t.equal(first.step.action, 'wait', 'first seen now: it may still be renewed');
    const before = leaseStep(stale, 'audit-b', first.observed, 1_000_000 + 14_999, timing, at);
    t.equal(before.step.action, 'wait', 'within 15 s of first seeing that record');
    const after = leaseStep(stale, 'audit-b', before.observed, 1_000_000 + 15_001, timing, at);
    t.same(
      after.step,
      {
        action: 'take',
        spec: {
          holderIdentity: 'audit-b',
          leaseDurationSeconds: 15,
          acquireTime: at,
          renewTime: at,
          leaseTransitions: 4,
        },
      },
      'taken, and counted as a transition',
    );
  },
);

t.test('released by its holder (no holderIdentity): taken at the next try', async (t) => {
  const released = lease({ leaseDurationSeconds: 1, leaseTransitions: 4, renewTime: at, acquireTime: at });
  const { step } = leaseStep(released, 'audit-b', undefined, 5, timing, at);
  t.equal(step.action, 'take');
  t.match(step, { spec: { holderIdentity: 'audit-b', leaseTransitions: 5 } });
});

t.test('held by this replica: renewed, keeping when it was acquired and the transition count', async (t) => {
  const acquired = new Date('2026-12-03T11:00:00Z');
  const { step } = leaseStep(
    heldBy('audit-a', '2026-12-03T11:59:58Z', 2),
    'audit-a',
    undefined,
    5,
    timing,
    at,
  );
  t.same(step, {
    action: 'take',
    spec: {
      holderIdentity: 'audit-a',
      leaseDurationSeconds: 15,
      acquireTime: acquired,
      renewTime: at,
      leaseTransitions: 2,
    },
  });
});
