/**
 * A platform exception, written where deploy/ mounts the sts-guard-exceptions ConfigMap, takes
 * effect without a restart; the waiver reaches kubectl as a warning and the API server's audit log
 * as an annotation. (The file is written the way the kubelet updates a ConfigMap volume: a new
 * file renamed into place.)
 */
import { renameSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { eventually } from '../support/wait.js';
import {
  auditAnnotationsOf,
  freshNamespace,
  kubectl,
  loadState,
  metricSum,
  scenario,
  stsGuardMetrics,
} from './support/env.js';

const state = loadState();
const ns = 'exceptions';
const file = state.stsGuard.env.EXCEPTIONS_FILE ?? '';

function writeExceptions(body: string) {
  writeFileSync(`${file}.new`, body);
  renameSync(`${file}.new`, file);
}

t.test('an exception waives a rule for one StatefulSet, reloaded without a restart', async (t) => {
  t.ok(file, 'sts-guard runs with EXCEPTIONS_FILE');
  await freshNamespace(state, ns);
  // The Service for real first: a dry run of both would leave the StatefulSet's Service missing.
  await kubectl(state, [
    'apply',
    '-n',
    ns,
    '-f',
    `${scenario('seed-without-replset')}/1-headless-service.yaml`,
  ]);
  const apply = (dryRun: boolean) =>
    kubectl(state, [
      'apply',
      '-n',
      ns,
      ...(dryRun ? ['--dry-run=server'] : []),
      '-f',
      scenario('seed-without-replset'),
    ]);
  t.not((await apply(true)).code, 0, 'without an exception: denied');

  writeExceptions(`apiVersion: sts-guard.io/v1
kind: ExceptionList
exceptions:
  - name: legacy-grade-db
    reason: "GRADE-42: standalone until the move to the operator"
    rules: [replica-set]
    match:
      namespaces: [${ns}]
      names: [mongodb]
`);
  t.teardown(() => writeExceptions('apiVersion: sts-guard.io/v1\nkind: ExceptionList\nexceptions: []\n'));
  await eventually(
    'the exception to be loaded',
    async () => ((await apply(true)).code === 0 ? true : undefined),
    30_000,
  );

  const waivedBefore = metricSum(await stsGuardMetrics(state), 'sts_guard_exceptions_applied_total');
  const applied = await apply(false);
  t.equal(applied.code, 0, 'admitted by exception', { stderr: applied.stderr });
  t.match(applied.stderr, /Warning: .*legacy-grade-db/, 'kubectl shows the waiver as a warning');
  const audit = await auditAnnotationsOf(state, ns, 'statefulsets', 'mongodb');
  t.equal(
    audit['validate.sts-guard.io/exception'],
    'legacy-grade-db:replica-set',
    'and the audit log records it',
  );
  t.ok(
    metricSum(await stsGuardMetrics(state), 'sts_guard_exceptions_applied_total') > waivedBefore,
    'and it is counted',
  );

  // The exception names one StatefulSet: another in the same namespace is still held to the rule.
  const other = await kubectl(
    state,
    ['apply', '-n', ns, '--dry-run=server', '-f', '-'],
    JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'mongodb-other' },
      spec: {
        replicas: 2,
        serviceName: 'mongodb-headless',
        selector: { matchLabels: { app: 'other' } },
        template: {
          metadata: { labels: { app: 'other' } },
          spec: { containers: [{ name: 'mongodb', image: 'mongo:4.4' }] },
        },
      },
    }),
  );
  t.not(other.code, 0, 'a StatefulSet the exception does not name is denied');
});
