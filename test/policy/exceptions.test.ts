import t from 'tap';
import { parseExceptionList } from '../../src/exceptions/load.js';
import { type ExceptionList, type StatefulSetReview, validateStatefulSet } from '../../src/policy/index.js';
import { defaultSettings, statefulSet } from '../support/fixtures.js';

const review = (
  namespace: string,
  labels: Record<string, string> = {},
  name = 'mongodb',
): StatefulSetReview => {
  const object = statefulSet({ replicas: 3, namespace, name });
  object.metadata = { ...object.metadata, labels: { ...object.metadata?.labels, ...labels } };
  return { operation: 'CREATE', namespace, object };
};
const headless = { outcome: 'found', service: { spec: { clusterIP: 'None' } } } as const;
const list = (text: string): ExceptionList =>
  parseExceptionList(`apiVersion: sts-guard.io/v1\nkind: ExceptionList\n${text}`, 'exceptions.yaml');

t.test('an exception waives only the rules it lists, for only the StatefulSets it matches', async (t) => {
  const exceptions = list(`exceptions:
  - name: legacy
    reason: INFRA-1
    rules: [replica-set]
    match:
      namespaces: [legacy]
      selector:
        matchLabels: { tier: db }
        matchExpressions:
          - { key: env, operator: In, values: [prod, staging] }
          - { key: canary, operator: DoesNotExist }
`);
  const verdict = (r: StatefulSetReview) =>
    validateStatefulSet(r, defaultSettings(), headless, { exceptions });
  const waived = verdict(review('legacy', { tier: 'db', env: 'prod' }));
  t.equal(waived.allowed, true);
  t.same(waived.exemptions, [{ exception: 'legacy', rule: 'replica-set' }]);
  t.same(waived.auditAnnotations, { exception: 'legacy:replica-set' });
  t.equal(verdict(review('other', { tier: 'db', env: 'prod' })).allowed, false, 'another namespace');
  t.equal(verdict(review('legacy', { tier: 'db', env: 'dev' })).allowed, false, 'env not In the values');
  t.equal(
    verdict(review('legacy', { tier: 'db', env: 'prod', canary: 'x' })).allowed,
    false,
    'canary exists',
  );
  t.equal(verdict(review('legacy', { tier: 'web', env: 'prod' })).allowed, false, 'matchLabels differ');

  // A rule the exception does not list still denies: the headless Service is missing here.
  const other = validateStatefulSet(
    review('legacy', { tier: 'db', env: 'prod' }),
    defaultSettings(),
    { outcome: 'not-found' },
    { exceptions },
  );
  t.equal(other.allowed, false);
  t.same(
    other.violations.map((v) => v.rule),
    ['headless-service'],
  );
});

t.test('"*" waives every rule, and a rule in warn mode is waived without its warning', async (t) => {
  const exceptions = list(`exceptions:
  - { name: all, reason: lab cluster, rules: ["*"], match: { names: [mongodb] } }
`);
  const d = validateStatefulSet(review('x'), defaultSettings(), { outcome: 'not-found' }, { exceptions });
  t.equal(d.allowed, true);
  t.same(d.exemptions?.map((e) => e.rule).sort(), ['headless-service', 'replica-set']);
  t.notMatch(d.warnings.join('\n'), /\[replica-set\]: /, 'no warn-mode finding left');
});

t.test(
  'an exception list that does not validate is refused with every reason; duplicates are refused',
  async (t) => {
    t.throws(
      () =>
        list(
          'exceptions:\n  - name: a\n    reason: r\n    rules: [replica-set]\n    match: { names: [Mongo_DB] }\n',
        ),
      /exceptions.0.match.names.0: must match pattern/,
    );
    t.throws(
      () =>
        list(
          'exceptions:\n  - { name: a, reason: r, rules: ["*"], match: { names: [x] } }\n  - { name: a, reason: r, rules: ["*"], match: { names: [y] } }\n',
        ),
      /exception names must be unique: a/,
    );
    t.throws(() => parseExceptionList('kind: [', 'f.yaml'), /f.yaml: not valid YAML/);
    t.same(parseExceptionList('', 'empty.yaml'), { exceptions: [] }, 'an empty file is no exceptions');
  },
);

t.test(
  "deleting a headless Service: exempt StatefulSets and operators' StatefulSets do not hold it",
  async (t) => {
    const { validateServiceChange } = await import('../../src/policy/index.js');
    const sts = statefulSet({ replicas: 3, namespace: 'legacy', serviceName: 'mongodb-headless' });
    const review = {
      operation: 'DELETE' as const,
      namespace: 'legacy',
      name: 'mongodb-headless',
      oldObject: { metadata: { name: 'mongodb-headless' }, spec: { clusterIP: 'None' } },
    };
    const found = { outcome: 'found' as const, statefulSets: [sts] };
    t.equal(validateServiceChange(review, defaultSettings(), found).allowed, false, 'protected');
    const exceptions = list(`exceptions:
  - { name: teardown, reason: decommission, rules: [service-protection], match: { namespaces: [legacy] } }
`);
    const waived = validateServiceChange(review, defaultSettings(), found, { exceptions });
    t.equal(waived.allowed, true);
    t.same(waived.exemptions, [{ exception: 'teardown', rule: 'service-protection' }]);
    const owned = structuredClone(sts);
    owned.metadata!.ownerReferences = [
      {
        apiVersion: 'mongodbcommunity.mongodb.com/v1',
        kind: 'MongoDBCommunity',
        name: 'db',
        uid: 'u',
        controller: true,
      },
    ];
    t.equal(
      validateServiceChange(review, defaultSettings(), { outcome: 'found', statefulSets: [owned] }).allowed,
      true,
      'the operator keeps its own Service',
    );
  },
);
