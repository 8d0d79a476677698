import fc from 'fast-check';
import t from 'tap';
import { admissionReviewJson } from '../../src/admission/answer.js';
import type { AdmissionResponse } from '../../src/admission/types.js';

/** What the webhook sent before admissionReviewJson: Fastify's JSON.stringify of the envelope. */
const stringified = (response: AdmissionResponse) =>
  JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });

const base64 = fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('base64'));
const text = fc.string({ unit: 'binary', maxLength: 40 });

t.test(
  'the answer is byte for byte JSON.stringify of the AdmissionReview, whatever the response',
  async () => {
    const response: fc.Arbitrary<AdmissionResponse> = fc.record(
      {
        uid: text,
        allowed: fc.boolean(),
        status: fc.record(
          { code: fc.integer(), message: text, reason: text },
          { requiredKeys: ['code', 'message'] },
        ),
        patchType: fc.constant('JSONPatch' as const),
        patch: base64,
        warnings: fc.array(text, { maxLength: 3 }),
        auditAnnotations: fc.dictionary(
          fc.oneof(text, fc.constant('patch')),
          fc.oneof(text, fc.constant('')),
        ),
      },
      { requiredKeys: ['uid', 'allowed'] },
    );
    fc.assert(
      fc.property(response, (r) => {
        const json = admissionReviewJson(r);
        return json === stringified(r) && JSON.parse(json).response.patch === r.patch;
      }),
      { numRuns: 2000 },
    );
  },
);

t.test('strings that spell the patch key do not move the patch', async (t) => {
  const patch = Buffer.from('[{"op":"add","path":"/spec/x","value":1}]').toString('base64');
  for (const uid of ['","patch":"","x":"', '"patch":""', '\\"patch\\":\\"\\"', 'patch']) {
    const response: AdmissionResponse = {
      uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch,
      warnings: ['"patch":""', uid],
    };
    t.equal(admissionReviewJson(response), stringified(response), JSON.stringify(uid));
  }
  // An empty patch is still a patch.
  const empty: AdmissionResponse = { uid: 'u', allowed: true, patchType: 'JSONPatch', patch: '' };
  t.equal(admissionReviewJson(empty), stringified(empty));
});
