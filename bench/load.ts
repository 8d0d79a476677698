/**
 * The load generator, in a process of its own so it has its own core and the server under test
 * keeps one to itself. The orchestrator (run.ts) sends it jobs over IPC; it answers with figures.
 */
import { Agent, request } from 'node:https';
import autocannon from 'autocannon';
import { isEntry, percentile } from './stats.js';

export interface LoadRequest {
  path: string;
  body: string;
}

export type LoadJob =
  /** Closed loop, as fast as the server answers: throughput at saturation. */
  | { kind: 'saturate'; origin: string; requests: LoadRequest[]; connections: number; durationSec: number }
  /**
   * A fixed number of reviews as fast as the server answers (the RSS run, the CPU-per-review
   * rounds); `status` is the answer expected (default 200; 400 for the malformed body).
   */
  | {
      kind: 'amount';
      origin: string;
      requests: LoadRequest[];
      connections: number;
      amount: number;
      status?: 200 | 400;
    }
  /** Open loop at a fixed rate: latency below saturation. */
  | {
      kind: 'paced';
      origin: string;
      ca: string;
      requests: LoadRequest[];
      ratePerSec: number;
      durationSec: number;
    };

export interface SaturationResult {
  reviewsPerSec: number;
  completed: number;
  /** Non-2xx answers, connection errors and timeouts: any of these makes the figure worthless. */
  failures: number;
}

export interface LatencyResult {
  sent: number;
  /** Milliseconds, from the request being handed to the socket to the last byte of the answer. */
  p50: number;
  p99: number;
  max: number;
  failures: number;
  /** The rate actually achieved, reviews/s. */
  achievedRate: number;
}

export type LoadMessage = { id: number; job: LoadJob };
export type LoadReply =
  | { id: number; result: SaturationResult | LatencyResult }
  | { id: number; error: string };

async function cannon(
  origin: string,
  requests: LoadRequest[],
  connections: number,
  limit: { durationSec: number } | { amount: number },
  status: 200 | 400 = 200,
): Promise<SaturationResult> {
  const result = await autocannon({
    url: origin,
    connections,
    pipelining: 1, // kube-apiserver sends one review per connection at a time
    // autocannon notices the amount is reached only at its next sample tick (every second by
    // default): tick every 100 ms so a fixed-amount job does not idle up to a second at its end.
    ...('amount' in limit ? { amount: limit.amount, sampleInt: 100 } : { duration: limit.durationSec }),
    headers: { 'content-type': 'application/json' },
    requests: requests.map((r) => ({ method: 'POST' as const, path: r.path, body: r.body })),
  });
  const expected = status === 200 ? result['2xx'] : result['4xx'];
  return {
    reviewsPerSec: expected / result.duration,
    completed: expected,
    // Any other answer, connection error or timeout: each makes the figure worthless.
    failures: result['2xx'] + result.non2xx - expected + result.errors + result.timeouts,
  };
}

/**
 * Sends reviews on a fixed schedule whatever the answers do (open loop, as the API server's
 * writes arrive), over a keep-alive pool. autocannon's `overallRate` is not used here: it sends
 * each second's quota back to back per connection and records whole milliseconds, which cannot
 * judge a 2 ms target.
 */
async function paced(job: Extract<LoadJob, { kind: 'paced' }>): Promise<LatencyResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: job.ca, scheduling: 'lifo' });
  const send = (r: LoadRequest) =>
    new Promise<number>((resolveLatency, reject) => {
      const started = performance.now();
      const req = request(
        `${job.origin}${r.path}`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) },
          timeout: 10_000,
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () =>
            res.statusCode === 200
              ? resolveLatency(performance.now() - started)
              : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        },
      );
      // kube-apiserver's Go client sends with TCP_NODELAY; with Nagle on, a request can sit
      // behind a delayed ACK for 40 ms or more, which is the client's tail, not the server's.
      req.on('socket', (socket) => socket.setNoDelay(true));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(r.body);
    });

  // A warm-up at the same rate (answers discarded): open the connections and JIT-compile the
  // client's request path, so the run measures reviews and not TLS handshakes.
  await schedule(send, job.requests, job.ratePerSec, Math.min(1, job.durationSec / 2));
  const { latencies, failures, elapsedSec } = await schedule(
    send,
    job.requests,
    job.ratePerSec,
    job.durationSec,
  );
  agent.destroy();
  const sorted = latencies.filter((ms) => !Number.isNaN(ms)).sort();
  return {
    sent: latencies.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
    failures,
    achievedRate: latencies.length / elapsedSec,
  };
}

/** Sends `ratePerSec` reviews a second for `durationSec`, and waits for every answer. */
async function schedule(
  send: (r: LoadRequest) => Promise<number>,
  requests: LoadRequest[],
  ratePerSec: number,
  durationSec: number,
): Promise<{ latencies: Float64Array; failures: number; elapsedSec: number }> {
  const total = Math.max(1, Math.round(ratePerSec * durationSec));
  const intervalMs = 1000 / ratePerSec;
  const latencies = new Float64Array(total);
  let sent = 0;
  let settled = 0;
  let failures = 0;
  const started = performance.now();
  await new Promise<void>((done) => {
    const settle = () => {
      if (++settled === total) done();
    };
    const tick = () => {
      // Timers fire late by up to a millisecond or so; catch up so the average rate holds.
      const due = Math.min(total, Math.floor((performance.now() - started) / intervalMs) + 1);
      while (sent < due) {
        const index = sent++;
        send(requests[index % requests.length]!).then(
          (ms) => {
            latencies[index] = ms;
            settle();
          },
          () => {
            latencies[index] = Number.NaN;
            failures++;
            settle();
          },
        );
      }
      if (sent < total) setTimeout(tick, Math.max(0, intervalMs - 0.5));
    };
    tick();
  });
  return { latencies, failures, elapsedSec: (performance.now() - started) / 1000 };
}

function run(job: LoadJob): Promise<SaturationResult | LatencyResult> {
  switch (job.kind) {
    case 'saturate':
      return cannon(job.origin, job.requests, job.connections, { durationSec: job.durationSec });
    case 'amount':
      return cannon(job.origin, job.requests, job.connections, { amount: job.amount }, job.status);
    case 'paced':
      return paced(job);
  }
}

if (isEntry(import.meta.url) && process.send) {
  process.on('message', (message: LoadMessage) => {
    run(message.job).then(
      (result) => process.send!({ id: message.id, result } satisfies LoadReply),
      (error: unknown) =>
        process.send!({
          id: message.id,
          error: error instanceof Error ? error.message : String(error),
        } satisfies LoadReply),
    );
  });
  // The orchestrator closing the channel is the signal to go.
  process.on('disconnect', () => process.exit(0));
}
