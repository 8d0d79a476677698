// A reference, not a target: Fastify itself doing the baseline's job (bench/baseline-server.mjs)
// over the same TLS: parse the body (Fastify's JSON parser) and send the same fixed answer. Its
// distance from the baseline is what the framework costs before sts-guard does anything; the
// rest of sts-guard's distance is its own work (validation, the policy, the log line, metrics).
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const answers = process.env.BASELINE_ANSWERS_FILE
  ? JSON.parse(readFileSync(process.env.BASELINE_ANSWERS_FILE, 'utf8'))
  : {};

const app = Fastify({
  https: {
    cert: readFileSync(process.env.TLS_CERT_FILE),
    key: readFileSync(process.env.TLS_KEY_FILE),
    minVersion: 'TLSv1.2',
  },
  logger: false,
});
const answer = (req, reply) => {
  const uid = req.body?.request?.uid;
  const body =
    answers[`${req.url} ${uid}`] ??
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid, allowed: true },
    });
  return reply.type('application/json; charset=utf-8').send(body);
};
// A body that does not parse: sts-guard's 400 for it when recorded (the CPU table's malformed body).
app.setErrorHandler((error, req, reply) => {
  const refusal = answers[`${req.url} malformed`];
  if (refusal === undefined || error.statusCode !== 400) return reply.send(error);
  return reply.code(400).type('application/json; charset=utf-8').send(refusal);
});
app.post('/mutate', answer);
app.post('/validate', answer);
await app.listen({ port: Number(process.env.PORT ?? 8443), host: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
