// The bare serverless baseline: a Lambda handler that parses the AdmissionReview and sends a
// fixed answer (sts-guard's own, replayed from BASELINE_ANSWERS_FILE as in baseline-server.mjs),
// with nothing else, for the same cold-start harness (lambda-cold.mjs) as sts-guard's handler.
import { readFileSync } from 'node:fs';

const answers = process.env.BASELINE_ANSWERS_FILE
  ? JSON.parse(readFileSync(process.env.BASELINE_ANSWERS_FILE, 'utf8'))
  : {};

export async function handler(event) {
  const body = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const { uid } = JSON.parse(body).request;
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body:
      answers[`${event.rawPath} ${uid}`] ??
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid, allowed: true },
      }),
    isBase64Encoded: false,
  };
}
