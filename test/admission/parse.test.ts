import t from 'tap';
import { MAX_JSON_DEPTH, MalformedReviewError, readAdmissionReview } from '../../src/admission/parse.js';
import { admissionReview, replicaSet } from '../support/fixtures.js';

const parsed = (text: string): unknown => JSON.parse(text);
const review = () => JSON.stringify(admissionReview({ object: replicaSet() }));

t.test('a well-formed review is returned as it was parsed', async (t) => {
  const body = parsed(review());
  t.equal(readAdmissionReview(body), body);
});

t.test('prototype-poisoning keys are refused wherever they are, as a 400', async (t) => {
  const poisoned = [
    review().replace('"userInfo":{', '"userInfo":{"__proto__":{"polluted":true},'),
    review().replace('"object":{', '"object":{"constructor":{"prototype":{"polluted":true}},'),
    review().replace('"containers":[{', '"containers":[{"__proto__":null,'),
  ];
  for (const text of poisoned) {
    const error = t.throws(() => readAdmissionReview(parsed(text))) as MalformedReviewError;
    t.ok(error instanceof MalformedReviewError, 'a MalformedReviewError');
    t.equal(error.statusCode, 400);
    t.match(error.message, /"(__proto__|constructor\.prototype)" key/);
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing was polluted');
  // A field named constructor is not poisoning unless it carries a prototype.
  const harmless = review().replace('"userInfo":{', '"userInfo":{"constructor":{"name":"x"},');
  t.ok(readAdmissionReview(parsed(harmless)));
});

t.test(`nesting is limited to ${MAX_JSON_DEPTH} levels, at any size`, async (t) => {
  const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const withDeep = (levels: number) =>
    review().replace('"userInfo":{', `"userInfo":{"deep":${nested(levels)},`);
  // The review itself is 3 levels down to userInfo's members: body, request, userInfo.
  t.ok(readAdmissionReview(parsed(withDeep(MAX_JSON_DEPTH - 3))), 'at the limit: accepted');
  t.throws(() => readAdmissionReview(parsed(withDeep(MAX_JSON_DEPTH - 2))), /nested deeper than 128 levels/);
  t.throws(() => readAdmissionReview(parsed(nested(100_000))), /nested deeper than 128 levels/);
});

t.test('a body that is not an AdmissionReview request says which field is wrong', async (t) => {
  const noUid = parsed(review().replace(/"uid":"[^"]+",/, ''));
  t.throws(() => readAdmissionReview(noUid), /body\/request must have required property 'uid'/);
  t.throws(() => readAdmissionReview(null), /not an admission.k8s.io\/v1 AdmissionReview request/);
});
