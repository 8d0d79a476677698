import { X509Certificate } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { scaleReview, serviceDeletion } from '../support/reviews.js';
import { webhookAgainst } from '../support/webhook.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (format 0.0.4). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`. */
function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const matching = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matching.length > 1)
    throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]?.value;
}

const api = await new LocalApiServer().start();
api.put(service('mongodb-headless'));
api.put(service('mongodb', 'grade-submission', '10.96.0.12'));
api.putStatefulSet(statefulSet({ name: 'standalone', replicas: 1 }));
api.putStatefulSet(replicaSet());
const certificate = await createDevelopmentCertificate(await mkdtemp(join(tmpdir(), 'sts-guard-metrics-')));
const webhook = await webhookAgainst(api.kubeConfig(), {
  https: { key: certificate.key, cert: certificate.cert },
});
const app = webhook.app;
const origin = await app.listen({ port: 0, host: '127.0.0.1' });
t.teardown(async () => {
  await webhook.close();
  await api.close();
});

async function scrape(): Promise<{ contentType: string; samples: Sample[] }> {
  const answer = await httpsRequest(`${origin}/metrics`, { method: 'GET', ca: certificate.cert });
  if (answer.statusCode !== 200) throw new Error(`GET /metrics: HTTP ${answer.statusCode}`);
  return { contentType: String(answer.headers['content-type']), samples: parseExposition(answer.body) };
}

const post = (url: string, payload: unknown) =>
  app.inject({ method: 'POST', url, payload: payload as object });

t.test('GET /metrics counts reviews by webhook, operation, verdict and denying rule', async (t) => {
  await post('/validate', admissionReview({ object: statefulSet({ replicas: 3, serviceName: 'mongodb' }) }));
  await post('/validate', admissionReview({ object: replicaSet() }));
  await post('/validate', admissionReview({ object: replicaSet() }));
  await post('/mutate', admissionReview({ object: replicaSet() }));
  await post(
    '/validate',
    admissionReview({
      resource: { group: '', version: 'v1', resource: 'configmaps' },
      kind: { group: '', version: 'v1', kind: 'ConfigMap' },
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' } },
    }),
  );
  await post('/validate', scaleReview('standalone', 3));
  await post('/validate', serviceDeletion(service('mongodb-headless')));
  await post('/validate', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });

  const { contentType, samples } = await scrape();
  t.match(contentType, 'text/plain; version=0.0.4');
  const reviews = (labels: Record<string, string>) => sampleValue(samples, 'sts_guard_reviews_total', labels);
  t.equal(
    reviews({
      webhook: 'validate',
      operation: 'CREATE',
      verdict: 'denied',
      rule: 'headless-service,replica-set',
    }),
    1,
    'a denial names every rule that denied',
  );
  t.equal(reviews({ webhook: 'validate', operation: 'CREATE', verdict: 'allowed', rule: 'none' }), 2);
  t.equal(reviews({ webhook: 'mutate', operation: 'CREATE', verdict: 'patched', rule: 'none' }), 1);
  t.equal(reviews({ webhook: 'validate', operation: 'CREATE', verdict: 'skipped', rule: 'none' }), 1);
  t.equal(
    reviews({ webhook: 'validate', operation: 'UPDATE', verdict: 'denied', rule: 'replica-set' }),
    1,
    'scale',
  );
  t.equal(
    reviews({ webhook: 'validate', operation: 'DELETE', verdict: 'denied', rule: 'service-protection' }),
    1,
    'Service deletion',
  );
  t.equal(
    sampleValue(samples, 'sts_guard_review_errors_total', { webhook: 'validate', code: '400' }),
    1,
    'a malformed review is an error, not a review',
  );
});

t.test(
  'the latency histogram has buckets from sub-millisecond to seconds and counts every review',
  async (t) => {
    const { samples } = await scrape();
    const buckets = samples
      .filter((s) => s.name === 'sts_guard_review_duration_seconds_bucket' && s.labels.webhook === 'validate')
      .map((s) => s.labels.le);
    t.same(buckets.slice(0, 2), ['0.0005', '0.001']);
    t.ok(buckets.includes('5') && buckets.includes('+Inf'));
    t.equal(sampleValue(samples, 'sts_guard_review_duration_seconds_count', { webhook: 'validate' }), 6);
    t.ok((sampleValue(samples, 'sts_guard_review_duration_seconds_sum', { webhook: 'validate' }) ?? 0) > 0);
  },
);

t.test('look-ups are counted by outcome, failures included from zero', async (t) => {
  const { samples } = await scrape();
  // StatefulSet create: get service (found) ×3 reviews that ask; scale: get statefulset; Service delete: list.
  t.ok((sampleValue(samples, 'sts_guard_lookups_total', { outcome: 'found' }) ?? 0) >= 5);
  t.equal(sampleValue(samples, 'sts_guard_lookups_total', { outcome: 'unavailable' }), 0);

  api.misbehaviour = { kind: 'status', code: 500 };
  t.teardown(() => api.behave());
  await post('/validate', admissionReview({ object: replicaSet({ serviceName: 'uncached-headless' }) }));
  const after = (await scrape()).samples;
  t.equal(sampleValue(after, 'sts_guard_lookups_total', { outcome: 'unavailable' }), 1);
});

t.test(
  'the certificate expiry gauge is the serving certificate notAfter, and follows a reload',
  async (t) => {
    const { samples } = await scrape();
    const notAfter = Date.parse(new X509Certificate(certificate.cert).validTo) / 1000;
    t.equal(sampleValue(samples, 'sts_guard_certificate_expiry_timestamp_seconds'), notAfter);

    const { generate } = await import('selfsigned');
    const shortLived = await generate([{ name: 'commonName', value: 'sts-guard' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: new Date('2030-01-01T00:00:00Z'),
      notAfterDate: new Date('2030-02-01T00:00:00Z'),
    });
    app.recordServingCertificate(shortLived.cert);
    t.equal(
      sampleValue((await scrape()).samples, 'sts_guard_certificate_expiry_timestamp_seconds'),
      Date.parse('2030-02-01T00:00:00Z') / 1000,
    );
    app.recordServingCertificate('not a certificate');
    t.equal(
      sampleValue((await scrape()).samples, 'sts_guard_certificate_expiry_timestamp_seconds'),
      Date.parse('2030-02-01T00:00:00Z') / 1000,
      'an unreadable certificate leaves the last value',
    );
  },
);

t.test('Node process metrics are exported too', async (t) => {
  const { samples } = await scrape();
  t.ok(sampleValue(samples, 'process_cpu_user_seconds_total') !== undefined);
  t.ok(samples.some((s) => s.name === 'nodejs_heap_size_used_bytes'));
  t.ok(samples.some((s) => s.name.startsWith('nodejs_eventloop_lag')));
});

t.test('each app has its own registry: a second instance starts from zero', async (t) => {
  const other = await webhookAgainst(api.kubeConfig());
  t.teardown(other.close);
  const answer = await other.app.inject({ method: 'GET', url: '/metrics' });
  const samples = parseExposition(answer.body);
  t.equal(samples.filter((s) => s.name === 'sts_guard_reviews_total').length, 0);
});

t.test(
  "the review-duration histogram's text is prom-client's Histogram's for the same reviews",
  async (t) => {
    // ReviewDurations counts reviews itself (cheaper than Histogram.observe); dashboards and
    // alerts read the text, so it must stay what a prom-client Histogram would have exposed.
    const { Histogram, Registry } = await import('prom-client');
    const { ReviewDurations } = await import('../../src/server/metrics.js');
    const reference = new Registry();
    const histogram = new Histogram({
      name: 'sts_guard_review_duration_seconds',
      help: 'Time to decide one admission review, look-ups included.',
      labelNames: ['webhook'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [reference],
    });
    const ours = new Registry();
    const durations = new ReviewDurations();
    ours.registerMetric(durations as unknown as InstanceType<typeof Histogram>);
    t.equal(await ours.metrics(), await reference.metrics(), 'no series before the first review');
    // Bucket edges exactly, between them, above the last bound, and mutate before validate.
    const reviews: Array<['validate' | 'mutate', number]> = [
      ['mutate', 0.0003],
      ['validate', 0.0005],
      ['validate', 0.00051],
      ['mutate', 0.0123],
      ['validate', 2.5],
      ['validate', 11.2],
      ['mutate', 0],
    ];
    for (const [webhook, seconds] of reviews) {
      histogram.observe({ webhook }, seconds);
      durations.observe(webhook, seconds);
    }
    t.equal(await ours.metrics(), await reference.metrics());
    // As JSON carries them (prom-client's own sum and count hold an `exemplar: undefined`).
    const json = async (registry: InstanceType<typeof Registry>) =>
      JSON.parse(JSON.stringify(await registry.getMetricsAsJSON()));
    t.same(await json(ours), await json(reference));
    ours.resetMetrics();
    reference.resetMetrics();
    t.equal(await ours.metrics(), await reference.metrics(), 'and reset as prom-client resets');
  },
);
