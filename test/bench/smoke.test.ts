import t from 'tap';
import { runProcess } from '../support/processes.js';
import { repoRoot } from '../support/repo.js';

t.test(
  'npm run bench:smoke runs every part against sts-guard and the baseline and prints the tables',
  async (t) => {
    // The script itself, as `npm run bench:smoke` runs it; without the npm wrapper's output.
    const { code, stdout, stderr } = await runProcess(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--smoke'],
      { cwd: repoRoot, env: { ...process.env, NODE_OPTIONS: '' } },
    );

    // The phases with their times, for whoever reads CI's log; all of stderr when it failed.
    t.comment(
      code === 0
        ? stderr
            .split('\n')
            .filter((line) => line.startsWith('bench:'))
            .join('\n')
        : stderr.slice(-3000),
    );
    t.equal(code, 0, 'exits 0');
    t.match(stdout, /^figure\s+sts-guard\s+baseline\s+ratio\s+target\s+result$/m, 'prints the header');
    for (const row of [
      /^ {2}\/mutate +MongoDB rs CREATE \([\d.]+ KB\) +[\d,]+\/s +[\d,]+\/s +[\d.]+×/m,
      /^ {2}\/validate +MongoDB rs UPDATE\+oldObject \([\d.]+ KB\) +[\d,]+\/s +[\d,]+\/s +[\d.]+×/m,
      /^ {2}\/validate +nginx sts CREATE \([\d.]+ KB\) +[\d,]+\/s +[\d,]+\/s +[\d.]+×/m,
      /^ {2}\/mutate +p99 +[\d.]+ ms +[\d.]+ ms +[\d.]+× +≤ 2 ms +n\/a \(smoke\)$/m,
      /^ {2}\/validate +p99 +[\d.]+ ms +[\d.]+ ms/m,
      /^ {2}RSS after [\d,]+ reviews +[\d.]+ MB +[\d.]+ MB +[\d.]+×/m,
      /^ {2}RSS growth over the second half +[+-][\d.]+% +[+-][\d.]+%/m,
      /^ {2}first \/mutate \(no look-up\) +[\d.]+ ms +[\d.]+ ms +[\d.]+×/m,
      /^ {2}first \/validate \(live look-up\) +[\d.]+ ms +[\d.]+ ms +[\d.]+×/m,
      /^ {2}look-up p50 +[\d.]+ µs +[\d.]+ µs/m,
    ]) {
      t.match(stdout, row, `prints the row ${row.source.slice(5, 40)}…`);
    }
    // CPU per review: every server's figure for every workload, with no threshold here (the
    // full run's verdict line judges /validate against Fastify alone).
    t.match(
      stdout,
      /^ {2}\/validate MongoDB rs CREATE \([\d.]+ KB\) +\d+ µs +\d+ µs +[\d.]+× +≤ 1\.30× +n\/a \(smoke\)$/m,
      'prints the judged CPU-per-review row',
    );
    t.match(
      stdout,
      /^workload +sts-guard +Fastify alone +bare node:https +÷ Fastify +÷ bare$/m,
      'prints the CPU table',
    );
    const cpuFigure = String.raw`\d+ \[\d+–\d+\]`;
    for (const workload of [
      String.raw`\/validate MongoDB rs CREATE`,
      String.raw`\/mutate   MongoDB rs CREATE`,
      String.raw`\/validate nginx sts CREATE`,
      String.raw`\/validate statefulsets\/scale 3→5`,
      String.raw`\/validate Service DELETE`,
      String.raw`\/validate malformed body`,
      String.raw`\/validate review-replica-set\.json \+ ClusterIP Service`,
    ]) {
      const row = new RegExp(
        `^${workload} \\([\\d.]+ KB\\) +${cpuFigure} +${cpuFigure} +${cpuFigure} +[\\d.]+× +[\\d.]+×$`,
        'm',
      );
      t.match(stdout, row, `prints CPU per review for ${workload.replaceAll('\\', '')}`);
    }
    t.match(
      stdout,
      /^workload +sts-guard +Fastify alone +bare node:https +sts-guard ÷ bare +Fastify ÷ bare$/m,
      "prints the CPU rounds' throughput table",
    );
    t.match(
      stdout,
      /^\/validate review-replica-set\.json \+ ClusterIP Service \([\d.]+ KB\) +(\d+ \[\d+–\d+\] +){3}[\d.]+× +[\d.]+×$/m,
      "prints the regression workload's throughput, paired to the bare server",
    );
    t.notMatch(stdout, /PASS|MISS/, 'judges no target in smoke mode');
  },
);
