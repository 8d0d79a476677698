/** The client-routing rule: a Service that load-balances over a replica set's members sends clients to SECONDARYs. */

import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import { answerReview } from '../../src/admission/bindings.js';
import type { StatefulSetDirectory } from '../../src/pipeline/ports.js';
import {
  CLIENT_ROUTING_ANNOTATION,
  clientRoutingWarnings,
  type ExceptionList,
  type PolicySettings,
  validateClientRouting,
} from '../../src/policy/index.js';
import { admissionReview, defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { configMapsOf, fixture } from '../support/manifests.js';

const settings = defaultSettings();
const clusterIp = (
  name = 'mongodb',
  selector: Record<string, string> = { 'app.kubernetes.io/name': 'mongodb' },
) => {
  const s = service(name, 'grade-submission', '10.96.0.12');
  s.spec!.selector = selector;
  return s;
};
const templateLabels = (sts: V1StatefulSet) => sts.spec?.template.metadata?.labels ?? {};
const created = (object: V1Service, s: PolicySettings = settings, statefulSets = [replicaSet()]) =>
  validateClientRouting(
    { operation: 'CREATE', namespace: 'grade-submission', name: object.metadata?.name ?? '', object },
    s,
    { outcome: 'found', statefulSets },
  );

t.test(
  'a ClusterIP Service over a 3-member replica set is admitted with a warning that shows both fixes',
  async (t) => {
    const decision = created(clusterIp());
    t.equal(decision.allowed, true);
    t.equal(decision.warnings.length, 1);
    const [warning] = decision.warnings;
    t.match(warning, 'Service "grade-submission/mongodb" [client-routing]');
    t.match(warning, 'SECONDARY included');
    t.match(
      warning,
      'mongodb://mongodb-0.mongodb-headless.grade-submission.svc.cluster.local:27017,mongodb-1.mongodb-headless.grade-submission.svc.cluster.local:27017,mongodb-2.mongodb-headless.grade-submission.svc.cluster.local:27017/?replicaSet=rs0',
    );
    t.match(
      warning,
      'mongodb+srv://mongodb-headless.grade-submission.svc.cluster.local/?replicaSet=rs0&tls=false',
    );
    t.match(warning, `${CLIENT_ROUTING_ANNOTATION}=seed-only`);
  },
);

t.test('no warning where clients cannot land on a SECONDARY by accident', async (t) => {
  t.same(created(service('mongodb-headless')).warnings, [], 'a headless Service');
  t.same(created(clusterIp('web', { app: 'web' })).warnings, [], 'a selector that matches other pods');
  t.same(created(clusterIp(), settings, [replicaSet({ replicas: 1 })]).warnings, [], 'a single member');
  t.same(
    created(clusterIp(), settings, [statefulSet({ replicas: 3 })]).warnings,
    [],
    'no --replSet (another rule)',
  );
  const seedOnly = clusterIp();
  seedOnly.metadata!.annotations = { [CLIENT_ROUTING_ANNOTATION]: 'seed-only' };
  t.same(created(seedOnly).warnings, [], 'annotated seed-only');
  t.same(
    created(clusterIp(), { ...settings, rules: { ...settings.rules, 'client-routing': 'off' } }).warnings,
    [],
  );
});

t.test(
  'each warning names the set as it is now, though the same set and Service repeat the same text',
  async (t) => {
    // The text is remembered per set and Service (it is the same ~900 characters on every review
    // of them): any change to what it says must give the new text, never the remembered one.
    const warning = (object = clusterIp(), s = settings, sts = replicaSet()) => {
      const [only] = created(object, s, [sts]).warnings;
      return only ?? '';
    };
    const three = warning();
    t.equal(warning(), three, 'the same set and Service: the same warning');
    const five = warning(clusterIp(), settings, replicaSet({ replicas: 5 }));
    t.match(five, '5 members');
    t.match(five, 'mongodb-4.mongodb-headless.grade-submission.svc.cluster.local:27017');
    t.notMatch(warning(), 'mongodb-3.', 'and back at 3 members, three are named');
    t.match(warning(clusterIp('mongodb-rw')), 'Service "grade-submission/mongodb-rw"');
    t.match(
      warning(clusterIp(), { ...settings, clusterDomain: 'cluster.example' }),
      'mongodb+srv://mongodb-headless.grade-submission.svc.cluster.example/',
    );
    t.match(
      warning(clusterIp(), settings, replicaSet({ args: ['--replSet', 'rs1', '--bind_ip_all'] })),
      '?replicaSet=rs1',
    );
    t.match(
      warning(clusterIp(), settings, replicaSet({ args: ['--replSet', 'rs0', '--port', '27018'] })),
      'mongodb-0.mongodb-headless.grade-submission.svc.cluster.local:27018',
    );
    t.equal(warning(), three);
  },
);

t.test('RULE_CLIENT_ROUTING=enforce denies the Service', async (t) => {
  const decision = created(clusterIp(), {
    ...settings,
    rules: { ...settings.rules, 'client-routing': 'enforce' },
  });
  t.equal(decision.allowed, false);
  t.match(decision.message, 'sts-guard denied Service "grade-submission/mongodb"');
});

t.test(
  'an UPDATE is judged only when the selector changes or the Service starts to load-balance',
  async (t) => {
    const live = clusterIp();
    const relabelled = { ...live, metadata: { ...live.metadata, labels: { team: 'grades' } } };
    const judged = (object: V1Service, oldObject: V1Service) =>
      validateClientRouting(
        { operation: 'UPDATE', namespace: 'grade-submission', name: 'mongodb', object, oldObject },
        settings,
        { outcome: 'found', statefulSets: [replicaSet()] },
      ).warnings.length;
    t.equal(judged(relabelled, live), 0);
    t.equal(judged(live, clusterIp('mongodb', { app: 'old' })), 1);
  },
);

t.test('a StatefulSet CREATE warns about a Service that already balances over its pods', async (t) => {
  const review = { operation: 'CREATE' as const, namespace: 'grade-submission', object: replicaSet() };
  const found = { outcome: 'found' as const, services: [clusterIp(), service('mongodb-headless')] };
  t.equal(clientRoutingWarnings(review, settings, found).length, 1);
  t.same(clientRoutingWarnings(review, settings, { outcome: 'unavailable', reason: 'x' }), []);
});

t.test('the webhook: a Service CREATE lists the StatefulSets once and returns the warning', async (t) => {
  let lists = 0;
  const statefulSets: StatefulSetDirectory = {
    get: async () => ({ outcome: 'not-found' }),
    list: async () => {
      lists++;
      return { outcome: 'found', statefulSets: [replicaSet()] };
    },
  };
  const { request } = admissionReview({
    operation: 'CREATE',
    object: clusterIp(),
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
  });
  const result = await answerReview('/validate', request, {
    settings,
    services: { lookup: async () => ({ outcome: 'not-found' }) },
    statefulSets,
  });
  t.equal(result.response.allowed, true);
  t.match(result.response.warnings?.[0], '[client-routing]');
  t.equal(lists, 1);
});

t.test('the webhook: a StatefulSet CREATE warns when the Service directory can list', async (t) => {
  const { request } = admissionReview({ object: replicaSet() });
  const result = await answerReview('/validate', request, {
    settings,
    services: {
      lookup: async () => ({ outcome: 'found', service: service('mongodb-headless') }),
      list: async () => ({ outcome: 'found', services: [clusterIp(), service('mongodb-headless')] }),
    },
  });
  t.equal(result.response.allowed, true);
  t.equal(result.response.warnings?.filter((w) => w.includes('[client-routing]')).length, 1);
});

t.test(
  'the replica set is recognised in every form sts-guard reads: a shell wrapper, a config file in a ConfigMap',
  async (t) => {
    const wrapped = fixture('shell-wrapped-mongod.yaml').statefulSet;
    t.match(
      created(clusterIp(), settings, [wrapped]).warnings,
      [/replicaSet=rs0/],
      'exec mongod --replSet rs0',
    );

    const file = fixture('mongod-config-file.yaml');
    const sts = file.statefulSet;
    const review = { operation: 'CREATE' as const, namespace: 'grade-submission', object: sts };
    const services = { outcome: 'found' as const, services: [clusterIp('mongodb', templateLabels(sts))] };
    t.same(
      clientRoutingWarnings(review, settings, services),
      [],
      'without its ConfigMap, whether it is a replica set cannot be told: no warning on a guess',
    );
    const [warning] = clientRoutingWarnings(review, settings, services, { configMaps: configMapsOf(file) });
    t.match(warning, 'replicaSet=rs0', 'replication.replSetName from the file');
    t.match(warning, ':27018', "the members' port is net.port from the file");
  },
);

t.test(
  'a platform exception for client-routing silences the warning for the StatefulSets it matches',
  async (t) => {
    const exceptions: ExceptionList = {
      exceptions: [
        {
          name: 'reporting-lb',
          reason: 'read-only reporting tool with readPreference=secondaryPreferred',
          rules: ['client-routing'],
          match: { names: ['mongodb'] },
        },
      ],
    };
    const object = clusterIp();
    const decision = validateClientRouting(
      { operation: 'CREATE', namespace: 'grade-submission', name: 'mongodb', object },
      settings,
      { outcome: 'found', statefulSets: [replicaSet()] },
      { exceptions },
    );
    t.same(decision.warnings, []);
    t.same(decision.exemptions, [{ exception: 'reporting-lb', rule: 'client-routing' }]);
    t.same(decision.auditAnnotations, { exception: 'reporting-lb:client-routing' });
    const review = { operation: 'CREATE' as const, namespace: 'grade-submission', object: replicaSet() };
    const services = { outcome: 'found' as const, services: [object] };
    t.equal(clientRoutingWarnings(review, settings, services).length, 1, 'without the exception: warned');
    t.same(clientRoutingWarnings(review, settings, services, { exceptions }), [], 'with it: silent');
  },
);
