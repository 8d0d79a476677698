import type { V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import { parse } from 'yaml';
import {
  headlessServiceToLookUp,
  type PolicySettings,
  type ServiceLookup,
  type StatefulSetReview,
  validateStatefulSet,
} from '../../src/policy/index.js';
import { defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';

const headless: ServiceLookup = { outcome: 'found', service: service('mongodb-headless') };
const create = (object: V1StatefulSet): StatefulSetReview => ({
  operation: 'CREATE',
  namespace: 'grade-submission',
  object,
});
const withRules = (
  rules: Partial<PolicySettings['rules']>,
  more: Partial<PolicySettings> = {},
): PolicySettings => ({
  ...defaultSettings(),
  ...more,
  rules: { ...defaultSettings().rules, ...rules },
});

t.test('admits a replica set with --replSet and a headless Service', async (t) => {
  const d = validateStatefulSet(create(replicaSet()), defaultSettings(), headless);
  t.equal(d.allowed, true);
  t.same(d.violations, []);
  t.same(d.warnings, []);
});

t.test('accepts --replSet in every form mongod takes it', async (t) => {
  const forms: Array<Partial<V1StatefulSet['spec']> & { args?: string[]; command?: string[] }> = [
    { args: ['--replSet', 'rs0'] },
    { args: ['--replSet=rs0', '--bind_ip_all'] },
    { command: ['mongod', '--replSet', 'rs0'] },
    { command: ['/usr/bin/mongod'], args: ['--bind_ip_all', '--replSet=rs0'] },
  ];
  for (const form of forms) {
    const d = validateStatefulSet(create(statefulSet({ replicas: 3, ...form })), defaultSettings(), headless);
    t.equal(d.allowed, true, JSON.stringify(form));
  }
});

t.test('a single replica needs neither a replica set nor a headless Service', async (t) => {
  for (const replicas of [undefined, 0, 1]) {
    const sts = statefulSet({ replicas, serviceName: '' });
    t.equal(headlessServiceToLookUp(create(sts), defaultSettings()), undefined);
    t.equal(validateStatefulSet(create(sts), defaultSettings()).allowed, true, `replicas ${replicas}`);
  }
});

t.test('denies replicas > 1 without --replSet and says which args to set', async (t) => {
  const d = validateStatefulSet(
    create(statefulSet({ replicas: 3, args: ['--bind_ip_all'] })),
    defaultSettings(),
    headless,
  );
  t.equal(d.allowed, false);
  t.same(
    d.violations.map((v) => v.rule),
    ['replica-set'],
  );
  t.match(d.message, 'StatefulSet "grade-submission/mongodb"');
  t.match(d.message, '[replica-set]');
  t.match(d.message, 'args: ["--bind_ip_all","--replSet","rs0"]');
});

t.test('--replSet inside a non-mongod command does not count', async (t) => {
  const sts = statefulSet({ replicas: 3, command: ['sh', '-c'], args: ['echo --replSet rs0'] });
  t.equal(validateStatefulSet(create(sts), defaultSettings(), headless).allowed, false);
});

t.test('denies a missing Service and shows the headless Service to create', async (t) => {
  const d = validateStatefulSet(create(replicaSet()), defaultSettings(), { outcome: 'not-found' });
  t.equal(d.allowed, false);
  t.match(d.message, 'spec.serviceName "mongodb-headless" names no Service in namespace "grade-submission"');
  const yaml = d.message.slice(d.message.indexOf('apiVersion: v1')).replaceAll(/^ {5}/gm, '');
  const suggested = parse(yaml);
  t.same(suggested.metadata, { name: 'mongodb-headless', namespace: 'grade-submission' });
  t.equal(suggested.spec.clusterIP, 'None');
  t.same(suggested.spec.selector, { 'app.kubernetes.io/name': 'mongodb' });
  t.same(suggested.spec.ports, [{ name: 'mongodb', port: 27017 }]);
});

t.test('denies a ClusterIP Service as serviceName, saying clusterIP cannot change in place', async (t) => {
  const clusterIp: ServiceLookup = {
    outcome: 'found',
    service: service('mongodb-headless', 'grade-submission', '10.96.0.12'),
  };
  const d = validateStatefulSet(create(replicaSet()), defaultSettings(), clusterIp);
  t.equal(d.allowed, false);
  t.match(d.message, 'names a Service with clusterIP 10.96.0.12');
  t.match(d.message, 'clusterIP cannot be changed in place');
});

t.test('denies an empty serviceName and suggests a name and the Service', async (t) => {
  const sts = replicaSet({ serviceName: '' });
  t.equal(headlessServiceToLookUp(create(sts), defaultSettings()), undefined, 'nothing to look up');
  const d = validateStatefulSet(create(sts), defaultSettings());
  t.equal(d.allowed, false);
  t.match(d.message, 'spec.serviceName is empty');
  t.match(d.message, 'set spec.serviceName: mongodb-headless');
});

t.test('reports every violation in one message, numbered', async (t) => {
  const sts = statefulSet({ replicas: 3 });
  const d = validateStatefulSet(create(sts), defaultSettings(), { outcome: 'not-found' });
  t.same(
    d.violations.map((v) => v.rule),
    ['replica-set', 'headless-service'],
  );
  t.match(d.message, /\n1\. \[replica-set\].*\n[\s\S]*\n2\. \[headless-service\]/);
});

t.test('uses the request namespace for the look-up and the message', async (t) => {
  const sts = replicaSet();
  delete sts.metadata?.namespace;
  const review: StatefulSetReview = { operation: 'CREATE', namespace: 'team-a', object: sts };
  t.equal(headlessServiceToLookUp(review, defaultSettings()), 'mongodb-headless');
  const d = validateStatefulSet(review, defaultSettings(), { outcome: 'not-found' });
  t.match(d.message, 'StatefulSet "team-a/mongodb"');
  t.match(d.message, 'no Service in namespace "team-a"');
});

t.test('an unreachable API denies by default and says why', async (t) => {
  const d = validateStatefulSet(create(replicaSet()), defaultSettings(), {
    outcome: 'unavailable',
    reason: 'the Kubernetes API answered HTTP 403',
  });
  t.equal(d.allowed, false);
  t.match(d.message, 'could not verify that Service "grade-submission/mongodb-headless" is headless');
  t.match(d.message, 'HTTP 403');
});

t.test('an unreachable API admits with a warning in lookupFailureMode warn', async (t) => {
  const d = validateStatefulSet(create(replicaSet()), withRules({}, { lookupFailureMode: 'warn' }), {
    outcome: 'unavailable',
    reason: 'the Kubernetes API did not answer within 1500 ms',
  });
  t.equal(d.allowed, true);
  t.match(d.warnings.join('\n'), 'did not answer within 1500 ms');
});

t.test('rule modes: warn admits with the finding as a warning; off skips the rule', async (t) => {
  const sts = statefulSet({ replicas: 3 });
  const warned = validateStatefulSet(create(sts), withRules({ 'replica-set': 'warn' }), headless);
  t.equal(warned.allowed, true);
  t.match(warned.warnings.join('\n'), '[replica-set]');
  const off = validateStatefulSet(create(sts), withRules({ 'replica-set': 'off' }), headless);
  t.equal(off.allowed, true);
  t.notMatch(off.warnings.join('\n'), 'replica-set');
  const noLookup = withRules({ 'headless-service': 'off' });
  t.equal(
    headlessServiceToLookUp(create(replicaSet()), noLookup),
    undefined,
    'no look-up when the rule is off',
  );
  t.equal(validateStatefulSet(create(replicaSet()), noLookup).allowed, true);
});

t.test('UPDATE: scaling a non-compliant StatefulSet up is denied', async (t) => {
  const old = statefulSet({ replicas: 1 });
  const scaled = statefulSet({ replicas: 3 });
  const d = validateStatefulSet(
    { operation: 'UPDATE', namespace: 'grade-submission', object: scaled, oldObject: old },
    defaultSettings(),
    headless,
  );
  t.equal(d.allowed, false);
});

t.test(
  'UPDATE: a metadata-only change of a non-compliant StatefulSet is admitted with a warning',
  async (t) => {
    const old = statefulSet({ replicas: 3 });
    const relabelled = structuredClone(old);
    relabelled.metadata = { ...relabelled.metadata, finalizers: [], labels: { team: 'grades' } };
    const d = validateStatefulSet(
      { operation: 'UPDATE', namespace: 'grade-submission', object: relabelled, oldObject: old },
      defaultSettings(),
      headless,
    );
    t.equal(d.allowed, true);
    t.match(d.warnings.join('\n'), '(existing, spec unchanged)');
  },
);

t.test('DELETE is always admitted', async (t) => {
  const d = validateStatefulSet(
    { operation: 'DELETE', namespace: 'grade-submission', oldObject: statefulSet({ replicas: 3 }) },
    defaultSettings(),
  );
  t.equal(d.allowed, true);
});

t.test('non-database StatefulSets are not judged', async (t) => {
  const d = validateStatefulSet(create(statefulSet({ replicas: 3, image: 'redis:7' })), defaultSettings());
  t.same(d, { allowed: true, violations: [], findings: [], warnings: [], message: '' });
});

t.test('warns on an even number of replicas', async (t) => {
  const d = validateStatefulSet(create(replicaSet({ replicas: 4 })), defaultSettings(), headless);
  t.equal(d.allowed, true);
  t.match(d.warnings.join('\n'), '4 replicas survive 1 member failure(s), no more than 3 would');
  t.match(d.warnings.join('\n'), 'odd number');
  t.same(validateStatefulSet(create(replicaSet({ replicas: 5 })), defaultSettings(), headless).warnings, []);
});

t.test('warns when the PVC retention policy deletes database volumes', async (t) => {
  const sts = replicaSet();
  if (sts.spec)
    sts.spec.persistentVolumeClaimRetentionPolicy = { whenDeleted: 'Delete', whenScaled: 'Retain' };
  const d = validateStatefulSet(create(sts), defaultSettings(), headless);
  t.equal(d.allowed, true);
  t.match(d.warnings.join('\n'), 'whenDeleted: Delete');
});

t.test('warnings stay within the length the API server passes on untruncated', async (t) => {
  const sts = statefulSet({ replicas: 4 });
  if (sts.spec)
    sts.spec.persistentVolumeClaimRetentionPolicy = { whenDeleted: 'Delete', whenScaled: 'Delete' };
  const d = validateStatefulSet(
    create(sts),
    withRules({ 'replica-set': 'warn', 'headless-service': 'warn' }),
    {
      outcome: 'not-found',
    },
  );
  t.ok(d.warnings.length >= 3);
  for (const w of d.warnings) t.ok(w.length <= 256, `${w.length} chars: ${w}`);
});

t.test(
  'a Service manifest without clusterIP is not headless; the fix is to add clusterIP: None',
  async (t) => {
    const manifest = service('mongodb-headless');
    delete manifest.spec?.clusterIP;
    const d = validateStatefulSet(create(replicaSet()), defaultSettings(), {
      outcome: 'found',
      service: manifest,
    });
    t.equal(d.allowed, false);
    t.match(d.message, 'clusterIP (unset, so one is allocated)');
    t.match(d.message, 'add clusterIP: None to Service "mongodb-headless"');
  },
);

t.test('a headless Service without publishNotReadyAddresses is admitted with a warning', async (t) => {
  const headless = service('mongodb-headless');
  delete headless.spec?.publishNotReadyAddresses;
  const decision = validateStatefulSet(
    { operation: 'CREATE', namespace: 'grade-submission', object: replicaSet() },
    defaultSettings(),
    { outcome: 'found', service: headless },
  );
  t.equal(decision.allowed, true);
  t.match(decision.warnings.join('\n'), 'does not set publishNotReadyAddresses: true');
});
