import type { CoordinationV1Api, V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, lookupOptions } from '../cluster/client.js';
import type { AuditClient } from './client.js';

/**
 * One writer among the audit's replicas: a `coordination.k8s.io/v1` Lease, taken and renewed the
 * way client-go's leaderelection does it (LeaseLock). A candidate takes the Lease when it is free
 * or its holder has not renewed it for `leaseDurationSeconds`, as timed on the candidate's own
 * clock from when it last saw the record change (so clocks need not agree); the holder renews
 * every `retryPeriod` and stops writing once it has not renewed for `renewDeadline`, before anyone
 * else may take over. A holder that stops cleanly releases it, and the other replica takes over
 * at its next try.
 */

export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** client-go's defaults (15 s, 10 s, 2 s). */
export const DEFAULT_LEASE_TIMING: LeaseTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** The record as last seen, and when (this process's clock). */
export interface Observed {
  record: string;
  atMs: number;
}

/** What a candidate does with the Lease as it finds it. */
export type LeaseStep =
  | { action: 'create'; spec: V1LeaseSpec }
  | { action: 'take'; spec: V1LeaseSpec }
  | { action: 'wait'; holder: string };

/** The fields that change when anyone renews or takes the Lease. */
const recordOf = (spec: V1LeaseSpec | undefined) =>
  JSON.stringify([spec?.holderIdentity ?? '', String(spec?.renewTime ?? ''), spec?.leaseTransitions ?? 0]);

/**
 * The decision of one try (pure): create a missing Lease, take or renew it, or wait for its holder.
 * `observed` is updated when the record changed since the last try.
 */
export function leaseStep(
  lease: V1Lease | undefined,
  identity: string,
  observed: Observed | undefined,
  nowMs: number,
  timing: LeaseTiming,
  now: Date,
): { step: LeaseStep; observed: Observed | undefined } {
  const durationSeconds = Math.ceil(timing.leaseDurationMs / 1000);
  const fresh = (transitions: number, acquired: Date | undefined): V1LeaseSpec => ({
    holderIdentity: identity,
    leaseDurationSeconds: durationSeconds,
    acquireTime: acquired ?? now,
    renewTime: now,
    leaseTransitions: transitions,
  });
  if (!lease) return { step: { action: 'create', spec: fresh(0, undefined) }, observed };
  const spec = lease.spec;
  const record = recordOf(spec);
  const seen = observed?.record === record ? observed : { record, atMs: nowMs };
  const holder = spec?.holderIdentity ?? '';
  const heldFor = (spec?.leaseDurationSeconds ?? durationSeconds) * 1000;
  if (holder !== '' && holder !== identity && seen.atMs + heldFor > nowMs) {
    return { step: { action: 'wait', holder }, observed: seen };
  }
  const transitions = spec?.leaseTransitions ?? 0;
  const renewing = holder === identity;
  return {
    step: {
      action: 'take',
      spec: fresh(
        renewing ? transitions : transitions + 1,
        renewing ? (spec?.acquireTime as Date | undefined) : undefined,
      ),
    },
    observed: seen,
  };
}

export interface LeaderElection {
  isLeader(): boolean;
  /** Starts trying; `onChange` is called on every gain and loss of the Lease. */
  start(onChange: (leader: boolean) => void): void;
  /** Stops trying and, when holding the Lease, releases it so another replica takes over at once. */
  stop(): Promise<void>;
}

export interface LeaderElectionOptions extends AuditClient {
  namespace: string;
  name: string;
  identity: string;
  timing: LeaseTiming;
  log: Logger;
}

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

export function createLeaderElection(options: LeaderElectionOptions): LeaderElection {
  const { lib, namespace, name, identity, timing, log } = options;
  const api: CoordinationV1Api = options.kubeConfig.makeApiClient(lib.CoordinationV1Api);
  const requestOptions = () => lookupOptions(lib, timing.retryPeriodMs);
  let observed: Observed | undefined;
  let leader = false;
  let lastRenewMs = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let onChange: (leader: boolean) => void = () => {};
  let lastError = '';

  const setLeader = (value: boolean) => {
    if (value === leader) return;
    leader = value;
    log.info(
      { lease: `${namespace}/${name}`, identity },
      value
        ? 'audit Lease acquired: this replica writes reports'
        : 'audit Lease lost: this replica stops writing',
    );
    onChange(value);
  };

  // MicroTime: kube-apiserver parses six fractional digits; V1MicroTime writes them.
  const micro = (spec: V1LeaseSpec): V1LeaseSpec => ({
    ...spec,
    ...(spec.acquireTime ? { acquireTime: new lib.V1MicroTime(spec.acquireTime) } : {}),
    ...(spec.renewTime ? { renewTime: new lib.V1MicroTime(spec.renewTime) } : {}),
  });

  async function tryOnce(): Promise<boolean> {
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name, namespace }, requestOptions());
    } catch (error) {
      if (codeOf(error) !== 404) throw error;
    }
    const nowMs = Date.now();
    const decided = leaseStep(lease, identity, observed, nowMs, timing, new Date(nowMs));
    observed = decided.observed;
    const { step } = decided;
    if (step.action === 'wait') return false;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace,
        ...(lease?.metadata?.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
      },
      spec: micro(step.spec),
    };
    try {
      if (step.action === 'create') await api.createNamespacedLease({ namespace, body }, requestOptions());
      else await api.replaceNamespacedLease({ name, namespace, body }, requestOptions());
    } catch (error) {
      // Someone else created or renewed it first (optimistic concurrency): theirs.
      if (codeOf(error) === 409) return false;
      throw error;
    }
    observed = { record: recordOf(step.spec), atMs: nowMs };
    return true;
  }

  async function loop() {
    if (stopped) return;
    try {
      const held = await tryOnce();
      lastError = '';
      if (held) {
        lastRenewMs = Date.now();
        setLeader(true);
      } else setLeader(false);
    } catch (error) {
      const reason = describeApiError(
        error,
        timing.retryPeriodMs,
        'get, create, update leases',
        "the audit ServiceAccount's",
      );
      if (reason !== lastError) log.warn({ lease: `${namespace}/${name}`, reason }, 'audit Lease try failed');
      lastError = reason;
      // Not renewed within the deadline: stop writing before another replica may take over.
      if (leader && Date.now() - lastRenewMs > timing.renewDeadlineMs) setLeader(false);
    }
    if (!stopped) {
      timer = setTimeout(loop, timing.retryPeriodMs);
      timer.unref();
    }
  }

  return {
    isLeader: () => leader && Date.now() - lastRenewMs <= timing.renewDeadlineMs,
    start(callback) {
      onChange = callback;
      void loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (!leader) return;
      setLeader(false);
      try {
        const lease = await api.readNamespacedLease({ name, namespace }, requestOptions());
        if (lease.spec?.holderIdentity !== identity) return;
        // As client-go releases it: no holder, so the next candidate takes it at its next try.
        const now = new lib.V1MicroTime(Date.now());
        await api.replaceNamespacedLease(
          {
            name,
            namespace,
            body: {
              ...lease,
              spec: {
                leaseDurationSeconds: 1,
                leaseTransitions: lease.spec?.leaseTransitions ?? 0,
                acquireTime: now,
                renewTime: now,
              },
            },
          },
          requestOptions(),
        );
        log.info({ lease: `${namespace}/${name}`, identity }, 'audit Lease released');
      } catch (error) {
        log.warn(
          {
            reason: describeApiError(
              error,
              timing.retryPeriodMs,
              'update leases',
              "the audit ServiceAccount's",
            ),
          },
          'could not release the audit Lease; another replica takes over once it expires',
        );
      }
    },
  };
}
