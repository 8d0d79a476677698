// The bare baseline: what Node itself does for the same AdmissionReview exchange over the same
// TLS, with nothing else. It reads the body, parses it (the least a correct webhook does: the
// answer must echo request.uid) and sends a fixed answer. The fixed answers are the bytes
// sts-guard sent for the same review (BASELINE_ANSWERS_FILE, keyed by "<path> <uid>"), so both
// move the same bytes and the difference is sts-guard's work; unknown reviews are just admitted.
// Plain JavaScript, so its cold start pays for no loader.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const answers = process.env.BASELINE_ANSWERS_FILE
  ? JSON.parse(readFileSync(process.env.BASELINE_ANSWERS_FILE, 'utf8'))
  : {};

const server = createServer(
  {
    cert: readFileSync(process.env.TLS_CERT_FILE),
    key: readFileSync(process.env.TLS_KEY_FILE),
    minVersion: 'TLSv1.2', // the same TLS settings as sts-guard's listener
    keepAliveTimeout: 72_000, // Fastify's default, so idle connections live as long on both
  },
  (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      let uid = '';
      try {
        uid = JSON.parse(Buffer.concat(chunks).toString('utf8')).request.uid;
      } catch {
        // sts-guard's 400 for the same body, when recorded (the CPU table's malformed body).
        const refusal = answers[`${req.url} malformed`] ?? '';
        res.writeHead(400, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(refusal),
        });
        res.end(refusal);
        return;
      }
      const body =
        answers[`${req.url} ${uid}`] ??
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid, allowed: true },
        });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  },
);

server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
