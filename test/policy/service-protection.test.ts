import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import {
  type ServiceReview,
  serviceProtectionNeedsStatefulSets,
  validateServiceChange,
} from '../../src/policy/index.js';
import { LocalApiServer } from '../support/apiserver.js';
import { defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { serviceDeletion, serviceUpdate } from '../support/reviews.js';
import { validate, webhookAgainst } from '../support/webhook.js';

const deletion = (old: V1Service | undefined, name = 'mongodb-headless'): ServiceReview => ({
  operation: 'DELETE',
  namespace: 'grade-submission',
  name,
  oldObject: old,
});

const found = (...statefulSets: V1StatefulSet[]) => ({ outcome: 'found', statefulSets }) as const;

t.test(
  'policy: deleting the headless Service of a 3-replica MongoDB is denied, naming the way out',
  async (t) => {
    const decision = validateServiceChange(
      deletion(service('mongodb-headless')),
      defaultSettings(),
      found(replicaSet({ replicas: 3 }), statefulSet({ name: 'cache', image: 'redis:7', replicas: 3 })),
    );
    t.equal(decision.allowed, false);
    t.same(
      decision.violations.map((v) => v.rule),
      ['service-protection'],
    );
    t.match(decision.message, 'sts-guard denied deleting Service "grade-submission/mongodb-headless"');
    t.match(decision.message, 'StatefulSet "grade-submission/mongodb" (MongoDB, 3 replicas)');
    t.match(decision.message, 'kubectl scale statefulset mongodb -n grade-submission --replicas=1');
    t.match(decision.message, 'or delete it');
    t.notMatch(decision.message, 'cache', 'a StatefulSet that is not a database is not named');
  },
);

t.test('policy: every replicated database using the Service is named', async (t) => {
  const decision = validateServiceChange(
    deletion(service('mongodb-headless')),
    defaultSettings(),
    found(replicaSet({ name: 'orders' }), replicaSet({ name: 'grades', replicas: 5 })),
  );
  t.equal(decision.allowed, false);
  t.match(
    decision.message,
    '"grade-submission/orders" (MongoDB, 3 replicas), StatefulSet "grade-submission/grades"',
  );
  t.match(decision.message, 'kubectl scale statefulset orders grades -n grade-submission --replicas=1');
});

t.test('policy: the Service may go once nothing replicated needs it', async (t) => {
  const cases: Array<[string, V1StatefulSet]> = [
    ['a single-replica MongoDB', replicaSet({ replicas: 1 })],
    ['a MongoDB naming another Service', replicaSet({ serviceName: 'other-headless' })],
    ['a replicated StatefulSet that is not a database', statefulSet({ image: 'nginx:1.27', replicas: 3 })],
    [
      'a MongoDB already being deleted',
      (() => {
        const sts = replicaSet();
        sts.metadata = { ...sts.metadata, deletionTimestamp: new Date('2025-01-01T00:00:00Z') };
        return sts;
      })(),
    ],
  ];
  for (const [what, sts] of cases) {
    t.equal(
      validateServiceChange(deletion(service('mongodb-headless')), defaultSettings(), found(sts)).allowed,
      true,
      what,
    );
  }
});

t.test(
  'policy: deleting a ClusterIP Service needs no look-up (the headless-service fix recreates it)',
  async (t) => {
    const clusterIp = deletion(service('mongodb', 'grade-submission', '10.96.0.12'), 'mongodb');
    t.equal(serviceProtectionNeedsStatefulSets(clusterIp, defaultSettings()), false);
    t.equal(validateServiceChange(clusterIp, defaultSettings()).allowed, true);
    t.equal(
      serviceProtectionNeedsStatefulSets(deletion(undefined), defaultSettings()),
      true,
      'a DELETE without oldObject is treated as headless',
    );
  },
);

t.test(
  'policy: an update that makes the headless Service a ClusterIP or ExternalName one is denied',
  async (t) => {
    const headless = service('mongodb-headless');
    const externalName: V1Service = {
      ...headless,
      spec: { type: 'ExternalName', externalName: 'mongo.example.com' },
    };
    const review: ServiceReview = {
      operation: 'UPDATE',
      namespace: 'grade-submission',
      name: 'mongodb-headless',
      object: externalName,
      oldObject: headless,
    };
    const decision = validateServiceChange(review, defaultSettings(), found(replicaSet()));
    t.equal(decision.allowed, false);
    t.match(
      decision.message,
      'changing Service "grade-submission/mongodb-headless" to type ExternalName, clusterIP (unset)',
    );

    const relabelled: ServiceReview = {
      ...review,
      object: { ...headless, metadata: { ...headless.metadata, labels: { team: 'grades' } } },
    };
    t.equal(serviceProtectionNeedsStatefulSets(relabelled, defaultSettings()), false, 'still headless');
  },
);

t.test('policy: warn mode admits with a warning; off asks for nothing', async (t) => {
  const warn = defaultSettings();
  warn.rules['service-protection'] = 'warn';
  const warned = validateServiceChange(deletion(service('mongodb-headless')), warn, found(replicaSet()));
  t.equal(warned.allowed, true);
  t.match(warned.warnings[0], '[service-protection]');
  t.match(warned.warnings[0], 'StatefulSet "grade-submission/mongodb"');

  const off = defaultSettings();
  off.rules['service-protection'] = 'off';
  t.equal(serviceProtectionNeedsStatefulSets(deletion(service('mongodb-headless')), off), false);
});

t.test(
  'policy: when the StatefulSets cannot be listed, lookupFailureMode decides and says why',
  async (t) => {
    const unavailable = { outcome: 'unavailable', reason: 'the Kubernetes API answered HTTP 500' } as const;
    const denied = validateServiceChange(
      deletion(service('mongodb-headless')),
      defaultSettings(),
      unavailable,
    );
    t.equal(denied.allowed, false);
    t.match(denied.message, 'could not list the StatefulSets in namespace "grade-submission"');
    t.match(denied.message, 'HTTP 500');
    const warned = validateServiceChange(
      deletion(service('mongodb-headless')),
      { ...defaultSettings(), lookupFailureMode: 'warn' },
      unavailable,
    );
    t.equal(warned.allowed, true);
    t.match(warned.warnings[0], 'HTTP 500');
  },
);

t.test('webhook: Service deletion, through the real client-node against a local API server', async (t) => {
  const api = await new LocalApiServer().start();
  api.putStatefulSet(replicaSet({ replicas: 3 }));
  const webhook = await webhookAgainst(api.kubeConfig());
  t.teardown(async () => {
    await webhook.close();
    await api.close();
  });

  t.test('an Argo CD prune of the headless Service of a running replica set is denied', async (t) => {
    const prune = serviceDeletion(service('mongodb-headless'));
    prune.request.userInfo = {
      username: 'system:serviceaccount:argocd:argocd-application-controller',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:argocd', 'system:authenticated'],
    };
    const response = await validate(webhook.app, prune);
    t.equal(response?.allowed, false);
    t.equal(response?.status?.code, 403);
    t.match(response?.status?.message, '[service-protection]');
    t.ok(api.requests.includes('GET /apis/apps/v1/namespaces/grade-submission/statefulsets'));
  });

  t.test('turning it into a ClusterIP Service is denied too', async (t) => {
    const update = serviceUpdate(
      service('mongodb-headless'),
      service('mongodb-headless', 'grade-submission', '10.96.0.40'),
    );
    t.equal((await validate(webhook.app, update))?.allowed, false);
  });

  t.test('after scaling the StatefulSet to 1, the Service may be deleted', async (t) => {
    api.putStatefulSet(replicaSet({ replicas: 1 }));
    const response = await validate(webhook.app, serviceDeletion(service('mongodb-headless')));
    t.equal(response?.allowed, true);
  });

  t.test('the same Service name in another namespace is not protected by this StatefulSet', async (t) => {
    api.putStatefulSet(replicaSet({ replicas: 3 }));
    const response = await validate(webhook.app, serviceDeletion(service('mongodb-headless', 'other-team')));
    t.equal(response?.allowed, true);
  });
});
