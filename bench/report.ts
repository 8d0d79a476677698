/**
 * The report: the figures of a run as the two plain-text tables `npm run bench` prints, each figure
 * beside its baseline with the ratio and the target, and notes saying how they were measured.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { LookupResult } from './lookup.js';
import type { ColdStartFigures } from './measure/cold-start.js';
import type { LatencyFigures } from './measure/latency.js';
import type { RssFigure } from './measure/rss.js';
import type { ReferenceFigure, ThroughputFigure } from './measure/throughput.js';
import { PROFILE_DIR, plan, profile, smoke, TARGETS } from './plan.js';
import {
  compareEntryInUse,
  compareNodeInUse,
  pinning,
  STS_GUARD_ENTRY,
  stsGuardEntryInUse,
} from './servers.js';
import { median } from './stats.js';
import { type CpuRow, pairedRatio, type Row, renderCpuTable, renderRateTable, renderTable } from './table.js';
import type { CpuWorkload, Workload } from './workloads.js';

/** Everything one run measured, and the machine's load around it. */
export interface Figures {
  list: Workload[];
  cpu: CpuWorkload[];
  throughput: ThroughputFigure[];
  reference: ReferenceFigure[];
  latency: LatencyFigures;
  cpuRows: CpuRow<CpuWorkload>[];
  /** Service GETs and PersistentVolumeClaim LISTs the throughput and latency runs made live. */
  liveGets: number;
  claimLists: number;
  pids: { stsGuard: number; baseline: number };
  /** With --compare: which of the compared build's answers differ in bytes (same verdicts). */
  compareDiffers: string[];
  rssStsGuard: RssFigure;
  rssBaseline: RssFigure;
  cold: ColdStartFigures;
  lookup: LookupResult;
  loadBefore: number;
  loadAfter: number;
}

const ms = (value: number) => `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const perSec = (value: number) => `${Math.round(value).toLocaleString('en-US')}/s`;
const us = (value: number) => (value < 10 ? `${value.toFixed(2)} µs` : `${Math.round(value)} µs`);
const percent = (value: number) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`;

function machine(): string {
  const model =
    readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? cpus()[0]?.model;
  return `${cpus().length} × ${model ?? 'unknown CPU'} · node ${process.version}`;
}

/** The 1-minute load average: another process busy on a 2-core machine skews every figure. */
export const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/** The main table: every figure beside its baseline, judged against its target unless smoke. */
function figuresTable(f: Figures): string {
  const { list, throughput, reference, latency, cpuRows, liveGets, claimLists, pids } = f;
  const { rssStsGuard, rssBaseline, cold, lookup, loadBefore, loadAfter } = f;
  const rows: Row[] = [];
  rows.push({
    section: `Throughput at saturation, reviews/s (${plan.connections} keep-alive TLS connections, one server process)`,
  });
  for (const f of throughput) {
    rows.push({
      figure: `${f.path.padEnd(9)} ${f.workload.label}`,
      stsGuard: perSec(f.stsGuard.reviewsPerSec),
      baseline: perSec(f.baseline.reviewsPerSec),
      ratio: f.stsGuard.reviewsPerSec / f.baseline.reviewsPerSec,
      target: `≥ ${TARGETS.throughputRatio.toFixed(2)}×`,
      pass: f.stsGuard.reviewsPerSec / f.baseline.reviewsPerSec >= TARGETS.throughputRatio,
    });
  }
  const floor = cpuRows.find((r) => r.workload.id === 'create-validate')!;
  rows.push({
    section: `Server CPU per review, median of ${plan.cpuRounds} rounds (table below) | Fastify alone; ratio: median of the rounds' ratios`,
  });
  rows.push({
    figure: floor.workload.label,
    stsGuard: us(median(floor.rounds['sts-guard'])),
    baseline: us(median(floor.rounds.fastify)),
    ratio: pairedRatio(floor, 'fastify'),
    target: `≤ ${TARGETS.cpuVsFastify.toFixed(2)}×`,
    pass: pairedRatio(floor, 'fastify') <= TARGETS.cpuVsFastify,
  });
  rows.push({
    section:
      'Reference, no target: Fastify alone (bench/fastify-floor.mjs: parse, same fixed answer) | baseline',
  });
  for (const f of reference) {
    rows.push({
      figure: `reviews/s  ${f.workload.label}`,
      stsGuard: perSec(f.reviewsPerSec),
      baseline: perSec(f.baselineReviewsPerSec),
      ratio: f.reviewsPerSec / f.baselineReviewsPerSec,
    });
  }
  rows.push({
    section: `Latency at ${plan.ratePerSec.toLocaleString('en-US')} reviews/s, open loop, the three bodies in turn`,
  });
  for (const path of ['/mutate', '/validate'] as const) {
    const s = latency[path];
    const b = latency.baseline;
    rows.push({
      figure: `${path.padEnd(9)} p50`,
      stsGuard: ms(s.p50),
      baseline: ms(b.p50),
      ratio: s.p50 / b.p50,
    });
    rows.push({
      figure: `${path.padEnd(9)} p99`,
      stsGuard: ms(s.p99),
      baseline: ms(b.p99),
      ratio: s.p99 / b.p99,
      target: `≤ ${TARGETS.p99Ms} ms`,
      pass: s.p99 <= TARGETS.p99Ms,
    });
    rows.push({
      figure: `${path.padEnd(9)} max`,
      stsGuard: ms(s.max),
      baseline: ms(b.max),
      ratio: s.max / b.max,
    });
  }
  const last = (f: RssFigure) => f.samples.at(-1)!;
  const growth = (f: RssFigure) => {
    const mid = f.samples[Math.floor(f.samples.length / 2)]![1];
    return (last(f)[1] - mid) / mid;
  };
  rows.push({ section: `Memory: RSS of a fresh server process, /mutate and /validate in turn` });
  rows.push({
    figure: `RSS after ${last(rssStsGuard)[0].toLocaleString('en-US')} reviews`,
    stsGuard: mb(last(rssStsGuard)[1]),
    baseline: mb(last(rssBaseline)[1]),
    ratio: last(rssStsGuard)[1] / last(rssBaseline)[1],
    target: `≤ ${TARGETS.rssRatio.toFixed(2)}×`,
    pass: last(rssStsGuard)[1] / last(rssBaseline)[1] <= TARGETS.rssRatio,
  });
  rows.push({
    figure: 'RSS growth over the second half',
    stsGuard: percent(growth(rssStsGuard)),
    baseline: percent(growth(rssBaseline)),
    target: `≤ ${percent(TARGETS.rssGrowth)}`,
    pass: growth(rssStsGuard) <= TARGETS.rssGrowth,
  });
  rows.push({
    section: `Cold start: process spawn → first admitted review over TLS, median of ${plan.coldStarts}`,
  });
  /** A cold-start row: the median of `values` against the median of `baseline`, judged. */
  const coldRow = (figure: string, values: number[], baseline: number[]): Row => ({
    figure,
    stsGuard: ms(median(values)),
    baseline: ms(median(baseline)),
    ratio: median(values) / median(baseline),
    target: `≤ ${TARGETS.coldStartRatio.toFixed(2)}×`,
    pass: median(values) / median(baseline) <= TARGETS.coldStartRatio,
  });
  const baselineCold = median(cold.baseline);
  rows.push(coldRow('first /mutate (no look-up)', cold.mutate, cold.baseline));
  rows.push(coldRow('first /validate (live look-up)', cold.validate, cold.baseline));
  rows.push({
    figure: 'reference, no target: Fastify alone',
    stsGuard: ms(median(cold.fastify)),
    baseline: ms(baselineCold),
    ratio: median(cold.fastify) / baselineCold,
  });
  if (cold.lambda) {
    const bundled = cold.lambda.module.endsWith('.mjs') ? 'bundle' : 'dist/, unbundled';
    rows.push(coldRow(`Lambda (${bundled}): first /mutate`, cold.lambda.mutate, cold.lambda.baseline));
    rows.push(coldRow(`Lambda (${bundled}): first /validate`, cold.lambda.validate, cold.lambda.baseline));
  } else {
    rows.push({
      figure: 'Lambda handler',
      stsGuard: 'skipped',
      baseline: '',
      note: 'no src/serverless/lambda.ts',
    });
  }
  rows.push({
    section: 'Service look-up, in process (client-node → local API server): warm cache | live GET',
  });
  for (const stat of ['p50', 'p99', 'mean'] as const) {
    rows.push({
      figure: `look-up ${stat}`,
      stsGuard: us(lookup.cached[stat]),
      baseline: us(lookup.live[stat]),
      ratio: lookup.cached[stat] / lookup.live[stat],
    });
  }

  const minCpu = (key: 'stsGuardCpu' | 'baselineCpu') => Math.min(...throughput.map((f) => f[key]));
  const notes = [
    `workloads: ${list.map((w) => w.label).join(', ')}; responses checked before timing`,
    `server CPU during saturation runs: sts-guard ≥ ${(minCpu('stsGuardCpu') * 100).toFixed(0)}%, baseline ≥ ${(minCpu('baselineCpu') * 100).toFixed(0)}% of a core` +
      (minCpu('baselineCpu') < 0.9
        ? ' (baseline below 90%: the load generator, not the baseline, was the limit)'
        : ''),
    `cores: ${pinning()}`,
    `Service look-ups that went live during the throughput and latency runs: ${liveGets} (cache on); PersistentVolumeClaim LISTs (one per MongoDB CREATE's /mutate): ${claimLists}`,
    `latency achieved rate: ${(['baseline', '/mutate', '/validate'] as const).map((k) => `${k} ${Math.round(latency[k].achievedRate)}/s`).join(', ')}`,
    `RSS every ${Math.round(plan.rssReviews / plan.rssSamples).toLocaleString('en-US')} reviews (MB): sts-guard ${rssStsGuard.samples.map(([, b]) => (b / 1048576).toFixed(0)).join(' ')}; baseline ${rssBaseline.samples.map(([, b]) => (b / 1048576).toFixed(0)).join(' ')}`,
    `cold starts (ms): baseline ${cold.baseline.map((v) => v.toFixed(0)).join(' ')}; Fastify alone ${cold.fastify.map((v) => v.toFixed(0)).join(' ')}; /mutate ${cold.mutate.map((v) => v.toFixed(0)).join(' ')}; /validate ${cold.validate.map((v) => v.toFixed(0)).join(' ')}`,
  ];
  if (cold.lambda) {
    notes.push(
      `Lambda cold starts (ms): baseline ${cold.lambda.baseline.map((v) => v.toFixed(0)).join(' ')}; /mutate ${cold.lambda.mutate.map((v) => v.toFixed(0)).join(' ')}; /validate ${cold.lambda.validate.map((v) => v.toFixed(0)).join(' ')}`,
    );
  }
  if (Math.max(loadBefore, loadAfter) > 0.5) {
    notes.push(
      `1-min load average was ${loadBefore.toFixed(2)} before the run (${loadAfter.toFixed(2)} after): other processes shared the cores, so the figures are noisy`,
    );
  }
  if (stsGuardEntryInUse() !== STS_GUARD_ENTRY) notes.push(`sts-guard measured: ${stsGuardEntryInUse()}`);
  if (compareEntryInUse()) {
    const node = compareNodeInUse() === process.execPath ? 'this Node.js' : compareNodeInUse();
    const differs = f.compareDiffers.length > 0 ? f.compareDiffers.join('; ') : 'none';
    notes.push(
      `compared build (CPU table only): ${compareEntryInUse()} on ${node}; same verdicts, answers differing in bytes: ${differs}`,
    );
  }
  if (profile) {
    notes.push(
      `CPU profiles: ${PROFILE_DIR}/CPU.*.<pid>.*.cpuprofile, sts-guard pid ${pids.stsGuard}, baseline pid ${pids.baseline}; summarise with bench/profile.ts`,
    );
  }
  return renderTable({
    title: `sts-guard benchmark (${smoke ? 'smoke: scripts only, no targets' : 'full run'}) · ${machine()}`,
    rows,
    notes,
    judge: !smoke,
  });
}

/** The CPU-per-review table: each workload on each server, medians and ranges of the rounds. */
function cpuTable({ cpu, cpuRows }: Figures): string {
  return renderCpuTable({
    title: `Server CPU per review, µs: user + system CPU of the server process (each thread's run time, /proc/<pid>/task/*/schedstat) over ${plan.cpuReviews.toLocaleString('en-US')} reviews ÷ reviews answered; median of ${plan.cpuRounds} interleaved rounds [min–max]; ratios: median of the rounds' ratios`,
    rows: cpuRows,
    notes: [
      `load from a separate process (autocannon, ${plan.connections} keep-alive TLS connections), so its CPU is not counted; the server on a core of its own when pinned`,
      `${cpu
        .filter((w) => w.live)
        .map((w) => `${w.label.replace(/^\/\S+\s+/, '')}: sts-guard's live ${w.live}`)
        .join(
          '; ',
        )} to the local API server stand-in is in its figure (client-node in the server process); the other two servers make none`,
      ...cpu
        .filter((w) => w.share !== undefined)
        .map(
          (w) =>
            `${w.label}: ${Math.ceil(plan.cpuReviews * w.share!).toLocaleString('en-US')} reviews per round${w.status === 400 ? '; Fastify (so sts-guard and Fastify alone) closes the connection after a body it cannot parse, so each of their reviews includes a TLS handshake, the bare server keeps the connection' : ''}`,
        ),
    ],
  });
}

/** The CPU rounds' throughput: each server's reviews/s in the same rounds, paired to the bare server's. */
function rateTable({ cpuRows }: Figures): string {
  return renderRateTable({
    title: `Throughput in the same CPU rounds, reviews/s (${plan.connections} keep-alive TLS connections, a fixed amount as fast as each server answers): median of ${plan.cpuRounds} rounds [min–max]; ratios: median of the rounds' ratios to the bare server`,
    rows: cpuRows,
  });
}

export const report = (f: Figures) => `${figuresTable(f)}\n${cpuTable(f)}\n${rateTable(f)}`;
