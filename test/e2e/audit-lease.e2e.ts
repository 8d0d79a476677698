/**
 * Two audit processes, one coordination.k8s.io Lease, against the real API server: only the holder
 * writes reports; stopping it (SIGTERM) releases the Lease and the other takes over at its next
 * try; killing it (SIGKILL) leaves the Lease to expire, and the other takes over within its
 * duration. The Lease timings here are short (4 s duration, 1 s retry) to keep the story quick.
 */
import t from 'tap';
import { eventually } from '../support/wait.js';
import {
  type AuditProcess,
  applyAuditRbac,
  auditKubeconfig,
  auditMetrics,
  getReport,
  installCrds,
  OPENREPORTS_CRDS,
  startAudit,
  stopAudit,
  uidOf,
} from './support/audit.js';
import { freshNamespace, kubectlOk, loadState, metricSum } from './support/env.js';

const state = loadState();
const ns = 'audit-lease';
const LEASE_DURATION_MS = 4_000;
const RETRY_MS = 1_000;

await applyAuditRbac(state);
await installCrds(state, OPENREPORTS_CRDS);
const kubeconfig = await auditKubeconfig(state);
const running = new Set<AuditProcess>();
t.teardown(async () => {
  for (const p of running) await stopAudit(p);
});

async function start(name: string) {
  const p = await startAudit(state, name, { KUBECONFIG: kubeconfig });
  running.add(p);
  return p;
}

async function stop(p: AuditProcess, signal: 'SIGTERM' | 'SIGKILL') {
  await stopAudit(p, signal);
  running.delete(p);
}

const holder = async () =>
  (
    await kubectlOk(state, [
      'get',
      'lease',
      'sts-guard-audit',
      '-n',
      'sts-guard',
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ])
  ).trim();

const written = async (p: AuditProcess) =>
  metricSum(await auditMetrics(p), 'sts_guard_audit_reports_written_total');

/** A MongoDB without --replSet (3 members, no headless Service): its report must appear. */
async function nonCompliant(name: string): Promise<string> {
  await kubectlOk(
    state,
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name },
      spec: {
        replicas: 3,
        serviceName: name,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: 'mongodb', image: 'mongo:7.0' }] },
        },
      },
    }),
  );
  const uid = await uidOf(state, 'statefulset', ns, name);
  await eventually(
    `the report of ${name}`,
    async () => getReport(state, 'reports.openreports.io', ns, uid),
    30_000,
  );
  return uid;
}

/** The process holding the Lease, once exactly one of `processes` says it does. */
async function leaderAmong(processes: AuditProcess[]): Promise<AuditProcess> {
  return eventually('exactly one leader', async () => {
    const leading: AuditProcess[] = [];
    for (const p of processes) {
      if (metricSum(await auditMetrics(p), 'sts_guard_audit_leader') === 1) leading.push(p);
    }
    const [only] = leading;
    return leading.length === 1 && only && (await holder()) === only.name ? only : undefined;
  });
}

t.test('two audit processes: only the Lease holder writes, and stopping it hands over', async (t) => {
  await freshNamespace(state, ns, { 'sts-guard.io/exempt': 'true' });
  const a = await start('audit-lease-a');
  const b = await start('audit-lease-b');
  const first = await leaderAmong([a, b]);
  const standby = first === a ? b : a;
  await nonCompliant('first');
  t.ok((await written(first)) > 0, `${first.name}, the holder, wrote the report`);
  t.equal(await written(standby), 0, `${standby.name}, the standby, wrote nothing`);

  // SIGTERM: the holder releases the Lease on its way out.
  const stoppedAt = Date.now();
  await stop(first, 'SIGTERM');
  await eventually('the standby to hold the Lease', async () =>
    (await holder()) === standby.name ? true : undefined,
  );
  const handover = Date.now() - stoppedAt;
  t.ok(handover < LEASE_DURATION_MS, `released: taken over in ${handover} ms, before the Lease could expire`);
  t.equal(metricSum(await auditMetrics(standby), 'sts_guard_audit_leader'), 1);
  await nonCompliant('second');
  t.ok((await written(standby)) > 0, `${standby.name} writes now`);

  // SIGKILL: nothing is released; the Lease must expire first.
  const c = await start('audit-lease-c');
  const beforeKill = await written(c);
  t.equal(beforeKill, 0, 'a new standby writes nothing');
  const killedAt = Date.now();
  await stop(standby, 'SIGKILL');
  await eventually('the new standby to hold the Lease', async () =>
    (await holder()) === c.name ? true : undefined,
  );
  const takeover = Date.now() - killedAt;
  t.ok(
    takeover <= LEASE_DURATION_MS + 2 * RETRY_MS + 1_000,
    `killed: taken over in ${takeover} ms, within the Lease's duration (${LEASE_DURATION_MS} ms) and a try`,
  );
  await nonCompliant('third');
  t.ok((await written(c)) > beforeKill, `${c.name} writes now`);
});
