import { X509Certificate } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, type Histogram, Registry } from 'prom-client';
import type { Verdict } from '../admission/responses.js';
import type { ExceptionListStatus } from '../exceptions/source.js';
import type { LookupOutcome } from '../pipeline/ports.js';
import type { Exemption } from '../policy/index.js';

/** One answered review, as the admission plugin logs it. */
export interface ReviewObservation {
  webhook: 'validate' | 'mutate';
  operation: string;
  verdict: Verdict;
  /** The rules that denied; empty when none did. */
  rules: readonly string[];
  lookups: readonly LookupOutcome[];
  /** Rules waived by platform exceptions. */
  exemptions?: readonly Exemption[] | undefined;
  durationSeconds: number;
}

export interface MetricsOptions {
  /** The serving certificate (PEM) at start; `recordServingCertificate` updates it on reload. */
  certificate?: string | undefined;
  /** The exception list's state, when one is configured (EXCEPTIONS_FILE). */
  exceptions?: { status(): ExceptionListStatus } | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Counts one answered review (called next to its log line). */
    observeReview(observation: ReviewObservation): void;
    /** Sets the certificate expiry gauge from a PEM certificate (its first certificate). */
    recordServingCertificate(pem: string): void;
  }
}

const REVIEW_ROUTES = new Set(['/validate', '/mutate']);
const REVIEW_LABELS = ['webhook', 'operation', 'verdict', 'rule'] as const;
type ReviewLabel = (typeof REVIEW_LABELS)[number];
const LOOKUP_OUTCOMES: readonly LookupOutcome[] = ['found', 'not-found', 'unavailable'];

// From a pure decision (well under 1 ms) to look-ups near LOOKUP_TIMEOUT_MS and the webhook's timeoutSeconds.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One webhook's review durations: the count in each bucket (not cumulative), their sum and count. */
interface DurationSeries {
  inBucket: number[];
  sum: number;
  count: number;
}

/**
 * `sts_guard_review_duration_seconds`, a histogram by `webhook`, counted here and handed to the
 * registry as prom-client's Histogram hands it over (the same series, labels and order, so the
 * same text): Histogram.observe checks and hashes its labels on every call, ~1.7 µs of each review
 * under load (bench/README.md, issue 21), where two label values need no hashing.
 */
export class ReviewDurations {
  readonly name = 'sts_guard_review_duration_seconds';
  readonly help = 'Time to decide one admission review, look-ups included.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** In order of each webhook's first review, as prom-client lists label sets. */
  private readonly series = new Map<string, DurationSeries>();

  observe(webhook: string, seconds: number): void {
    let series = this.series.get(webhook);
    if (!series) {
      series = { inBucket: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.series.set(webhook, series);
    }
    // As prom-client: the first bucket whose upper bound holds the value; above the last, only +Inf.
    const bucket = DURATION_BUCKETS.findIndex((bound) => seconds <= bound);
    if (bucket >= 0) series.inBucket[bucket] = (series.inBucket[bucket] ?? 0) + 1;
    series.sum += seconds;
    series.count += 1;
  }

  async get() {
    const name = this.name;
    const values: Array<{
      labels: Record<string, string | number>;
      value: number;
      metricName: string;
      exemplar?: null;
    }> = [];
    for (const [webhook, { inBucket, sum, count }] of this.series) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += inBucket[i] ?? 0;
        values.push({
          labels: { le, webhook },
          value: cumulative,
          metricName: `${name}_bucket`,
          exemplar: null,
        });
      });
      values.push({
        labels: { le: '+Inf', webhook },
        value: count,
        metricName: `${name}_bucket`,
        exemplar: null,
      });
      values.push({ labels: { webhook }, value: sum, metricName: `${name}_sum` });
      values.push({ labels: { webhook }, value: count, metricName: `${name}_count` });
    }
    return { name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

/**
 * GET /metrics in the Prometheus text format, from a registry of this instance's own (so tests
 * and several instances in one process do not share counters), with Node's process metrics.
 */
async function metrics(app: FastifyInstance, options: MetricsOptions) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  // The two review counters are kept as plain numbers per label set and handed to prom-client
  // when /metrics is read: prom-client checks and hashes the labels on every inc(), which was
  // ~1.5 µs of each review (bench/README.md). Label sets are few, so the map stays small.
  const pendingReviews = new Map<string, { labels: Record<ReviewLabel, string>; count: number }>();
  const pendingLookups: Record<LookupOutcome, number> = { found: 0, 'not-found': 0, unavailable: 0 };
  new Counter({
    name: 'sts_guard_reviews_total',
    help: 'Admission reviews answered, by webhook, operation, verdict (allowed, denied, patched, skipped) and the rules that denied (none when none did).',
    labelNames: REVIEW_LABELS,
    registers,
    collect() {
      for (const pending of pendingReviews.values()) {
        if (pending.count === 0) continue;
        this.inc(pending.labels, pending.count);
        pending.count = 0;
      }
    },
  });
  const duration = new ReviewDurations();
  // prom-client's types name only its own classes; the registry reads name, help, type,
  // aggregator, get() and reset(), which ReviewDurations has.
  registry.registerMetric(duration as unknown as Histogram<'webhook'>);
  const lookups = new Counter({
    name: 'sts_guard_lookups_total',
    help: 'Kubernetes look-ups made for reviews (Service get, StatefulSet get and list), by outcome: found, not-found, unavailable (timeout, refused, 403, 5xx).',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      for (const outcome of LOOKUP_OUTCOMES) {
        if (pendingLookups[outcome] === 0) continue;
        this.inc({ outcome }, pendingLookups[outcome]);
        pendingLookups[outcome] = 0;
      }
    },
  });
  const errors = new Counter({
    name: 'sts_guard_review_errors_total',
    help: 'Requests to /validate or /mutate answered with an HTTP error instead of an AdmissionReview (the API server then applies failurePolicy).',
    labelNames: ['webhook', 'code'] as const,
    registers,
  });
  const certificateExpiry = new Gauge({
    name: 'sts_guard_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the serving certificate, as a Unix timestamp; updated when the certificate is reloaded.',
    registers,
  });
  const exempted = new Counter({
    name: 'sts_guard_exceptions_applied_total',
    help: 'Reviews in which a platform exception waived a rule that would have denied or warned, by exception and rule.',
    labelNames: ['exception', 'rule'] as const,
    registers,
  });
  const exceptions = options.exceptions;
  if (exceptions) {
    new Gauge({
      name: 'sts_guard_exceptions_loaded',
      help: 'Exceptions in force (the last exception list that loaded and validated).',
      registers,
      collect() {
        this.set(exceptions.status().count);
      },
    });
    new Gauge({
      name: 'sts_guard_exceptions_load_healthy',
      help: '1 when the last load of the exception list succeeded; 0 when it failed and the previous list stayed in force.',
      registers,
      collect() {
        this.set(exceptions.status().healthy ? 1 : 0);
      },
    });
    new Counter({
      name: 'sts_guard_exceptions_load_failures_total',
      help: 'Loads of the exception list that failed (unreadable, invalid YAML, schema errors); the previous list stayed in force.',
      registers,
      collect() {
        this.reset();
        this.inc(exceptions.status().failures);
      },
    });
  }
  // Present from the start, so rate() and absent-series alerts work before the first failure.
  for (const outcome of LOOKUP_OUTCOMES) lookups.inc({ outcome }, 0);

  app.decorate('observeReview', (o: ReviewObservation) => {
    const rule = o.rules.length > 0 ? [...new Set(o.rules)].sort().join(',') : 'none';
    const key = `${o.webhook}\n${o.operation}\n${o.verdict}\n${rule}`;
    const pending = pendingReviews.get(key);
    if (pending) pending.count++;
    else {
      const labels = { webhook: o.webhook, operation: o.operation, verdict: o.verdict, rule };
      pendingReviews.set(key, { labels, count: 1 });
    }
    duration.observe(o.webhook, o.durationSeconds);
    for (const outcome of o.lookups) pendingLookups[outcome]++;
    for (const e of o.exemptions ?? []) exempted.inc({ exception: e.exception, rule: e.rule });
  });

  app.decorate('recordServingCertificate', (pem: string) => {
    try {
      certificateExpiry.set(Date.parse(new X509Certificate(pem).validTo) / 1000);
    } catch (err) {
      app.log.warn({ err }, 'could not read the serving certificate expiry for metrics');
    }
  });
  if (options.certificate) app.recordServingCertificate(options.certificate);

  // Callback-style hooks here and in health.ts: they run on every review, and an async hook costs a promise.
  app.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode >= 400) {
      // routeOptions builds an object on each read: only for the rare error answer.
      const route = request.routeOptions.url;
      if (route && REVIEW_ROUTES.has(route)) {
        errors.inc({ webhook: route.slice(1), code: String(reply.statusCode) });
      }
    }
    done();
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}

export const metricsPlugin = fp(metrics, { name: 'sts-guard-metrics' });
