import t from 'tap';
import { type ScaleReview, statefulSetToLookUpForScale, validateScale } from '../../src/policy/index.js';
import { LocalApiServer } from '../support/apiserver.js';
import { defaultSettings, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { scale, scaleReview } from '../support/reviews.js';
import { validate, webhookAgainst } from '../support/webhook.js';

/** The policy's view of `kubectl scale statefulset <name> --replicas=<to>`. */
const scaling = (name: string, to: number): ScaleReview => ({
  operation: 'UPDATE',
  namespace: 'grade-submission',
  name,
  object: scale(name, to),
  oldObject: scale(name, 1),
});

t.test(
  'policy: scaling a standalone MongoDB past one replica is denied by the replica-set rule',
  async (t) => {
    const standalone = statefulSet({ replicas: 1, serviceName: 'mongodb-headless' });
    const decision = validateScale(
      scaling('mongodb', 3),
      defaultSettings(),
      { outcome: 'found', statefulSet: standalone },
      { outcome: 'found', service: service('mongodb-headless') },
    );
    t.equal(decision.allowed, false);
    t.same(
      decision.violations.map((v) => v.rule),
      ['replica-set'],
    );
    t.match(decision.message, 'sts-guard denied StatefulSet "grade-submission/mongodb"');
    t.match(decision.message, 'without --replSet');
    t.match(decision.message, 'Scaling to 3 replicas (kubectl scale, an autoscaler) changes spec.replicas');
  },
);

t.test('policy: scaling a replica set whose serviceName is a ClusterIP Service is denied', async (t) => {
  const decision = validateScale(
    scaling('mongodb', 3),
    defaultSettings(),
    { outcome: 'found', statefulSet: replicaSet({ replicas: 1, serviceName: 'mongodb' }) },
    { outcome: 'found', service: service('mongodb', 'grade-submission', '10.96.0.12') },
  );
  t.equal(decision.allowed, false);
  t.same(
    decision.violations.map((v) => v.rule),
    ['headless-service'],
  );
});

t.test('policy: scaling a replica set behind its headless Service is admitted', async (t) => {
  const decision = validateScale(
    scaling('mongodb', 5),
    defaultSettings(),
    { outcome: 'found', statefulSet: replicaSet({ replicas: 3 }) },
    { outcome: 'found', service: service('mongodb-headless') },
  );
  t.same(decision, { allowed: true, violations: [], findings: [], warnings: [], message: '' });
});

t.test('policy: scaling to 0 or 1 needs no look-up and is always admitted', async (t) => {
  for (const to of [0, 1]) {
    t.equal(statefulSetToLookUpForScale(scaling('mongodb', to), defaultSettings()), undefined, `to ${to}`);
    t.equal(validateScale(scaling('mongodb', to), defaultSettings(), undefined).allowed, true, `to ${to}`);
  }
  const omitted: ScaleReview = { ...scaling('mongodb', 3), object: { spec: {} } };
  t.equal(
    statefulSetToLookUpForScale(omitted, defaultSettings()),
    undefined,
    'a Scale without spec.replicas scales to 0 (autoscaling/v1 omits 0)',
  );
  t.same(statefulSetToLookUpForScale(scaling('mongodb', 2), defaultSettings()), {
    namespace: 'grade-submission',
    name: 'mongodb',
  });
});

t.test('policy: scaling something that is not a database is admitted', async (t) => {
  const nginx = statefulSet({ image: 'nginx:1.27', replicas: 1 });
  const decision = validateScale(scaling('mongodb', 4), defaultSettings(), {
    outcome: 'found',
    statefulSet: nginx,
  });
  t.equal(decision.allowed, true);
});

t.test(
  'policy: scaling to the count a non-compliant set already has is admitted with a warning',
  async (t) => {
    const decision = validateScale(
      scaling('mongodb', 3),
      defaultSettings(),
      {
        outcome: 'found',
        statefulSet: statefulSet({ replicas: 3 }),
      },
      { outcome: 'found', service: service('mongodb-headless') },
    );
    t.equal(decision.allowed, true);
    t.match(decision.warnings.join('\n'), '(existing, spec unchanged)');
  },
);

t.test('policy: when the StatefulSet cannot be read, lookupFailureMode decides and says why', async (t) => {
  const unavailable = { outcome: 'unavailable', reason: 'the Kubernetes API answered HTTP 403' } as const;
  const denied = validateScale(scaling('mongodb', 3), defaultSettings(), unavailable);
  t.equal(denied.allowed, false);
  t.match(denied.message, 'could not read StatefulSet "grade-submission/mongodb"');
  t.match(denied.message, 'HTTP 403');
  t.match(denied.message, 'scaling to 1 replica is always admitted');

  const warned = validateScale(
    scaling('mongodb', 3),
    { ...defaultSettings(), lookupFailureMode: 'warn' },
    unavailable,
  );
  t.equal(warned.allowed, true);
  t.match(warned.warnings[0], 'HTTP 403');

  t.equal(
    validateScale(scaling('mongodb', 3), defaultSettings(), { outcome: 'not-found' }).allowed,
    true,
    'a StatefulSet that does not exist has nothing to protect',
  );
});

t.test('policy: with both StatefulSet rules off, scaling asks for nothing', async (t) => {
  const settings = defaultSettings();
  settings.rules['replica-set'] = 'off';
  settings.rules['headless-service'] = 'off';
  t.equal(statefulSetToLookUpForScale(scaling('mongodb', 3), settings), undefined);
});

t.test('webhook: kubectl scale, through the real client-node against a local API server', async (t) => {
  const api = await new LocalApiServer().start();
  api.put(service('mongodb-headless'));
  api.putStatefulSet(statefulSet({ name: 'standalone', replicas: 1 }));
  api.putStatefulSet(replicaSet({ name: 'replicated', replicas: 3 }));
  const webhook = await webhookAgainst(api.kubeConfig());
  t.teardown(async () => {
    await webhook.close();
    await api.close();
  });

  t.test('scaling a MongoDB without --replSet to 3 is denied with the fix', async (t) => {
    const response = await validate(webhook.app, scaleReview('standalone', 3));
    t.equal(response?.allowed, false);
    t.equal(response?.status?.code, 403);
    t.match(response?.status?.message, '[replica-set]');
    t.match(response?.status?.message, '"--replSet","rs0"');
    t.ok(api.requests.includes('GET /apis/apps/v1/namespaces/grade-submission/statefulsets/standalone'));
  });

  t.test('scaling a replica set behind its headless Service to 5 is admitted', async (t) => {
    const response = await validate(webhook.app, scaleReview('replicated', 5, 3));
    t.equal(response?.allowed, true);
    t.ok(api.requests.includes('GET /api/v1/namespaces/grade-submission/services/mongodb-headless'));
  });

  t.test('scaling down to 1 is admitted without asking the API server', async (t) => {
    const before = api.requests.length;
    const response = await validate(webhook.app, scaleReview('standalone', 1, 3));
    t.equal(response?.allowed, true);
    t.equal(api.requests.length, before);
  });

  t.test('the mutating webhook leaves a Scale alone (nothing to patch)', async (t) => {
    const review = scaleReview('standalone', 3);
    const answer = await webhook.app.inject({ method: 'POST', url: '/mutate', payload: review });
    t.same(answer.json().response, { uid: review.request.uid, allowed: true });
  });

  t.test('a Scale of the wrong shape is a 400, not a decision', async (t) => {
    const review = scaleReview('standalone', 3);
    (review.request.object as { spec: unknown }).spec = { replicas: 'three' };
    const answer = await webhook.app.inject({ method: 'POST', url: '/validate', payload: review });
    t.equal(answer.statusCode, 400);
    t.match(answer.json().message, 'request.object is not an autoscaling/v1 Scale');
  });
});
