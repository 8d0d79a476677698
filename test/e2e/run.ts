/**
 * `npm run test:e2e`: sts-guard against a real control plane (support/stack.ts starts it once).
 * First the declarative scenarios (test/e2e/chainsaw/<scenario>/, run by Kyverno's chainsaw with
 * the admin kubeconfig), then the stories that need code (test/e2e/*.e2e.ts, one after another
 * with tap, STS_GUARD_E2E_STATE naming what was started); then everything is torn down. The exit
 * status is 0 only when both passed, and the last line sums both in tap's form for CI.
 *
 *   npm run test:e2e                                    every scenario and story
 *   npm run test:e2e -- test/e2e/outage.e2e.ts          one story
 *   npm run test:e2e -- test/e2e/chainsaw/scale         one chainsaw scenario
 *   STS_GUARD_E2E_KEEP=1 npm run test:e2e               keep the state directory (logs, kubeconfigs)
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { repoPath, repoRoot } from '../support/repo.js';
import type { E2eState } from './support/env.js';
import { say, startE2eStack } from './support/stack.js';

interface Outcome {
  /** The step's exit status (0: passed). */
  status: number;
  pass: number;
  fail: number;
}

const CHAINSAW_DIR = 'test/e2e/chainsaw';

/** The operations of chainsaw's JSON report (--report-format JSON), by scenario. */
interface ChainsawReport {
  tests?: Array<{
    name: string;
    steps?: Array<{ name?: string; operations?: Array<{ name?: string; failure?: { error: string } }> }>;
  }>;
}

/**
 * Runs chainsaw on `dirs` against the e2e API server as the cluster admin. Its commands find the
 * same kubectl the stories drive (first on PATH); each operation counts as one check.
 */
async function runChainsaw(state: E2eState, dirs: string[]): Promise<Outcome> {
  const kubectlDir = join(state.dir, 'chainsaw-path');
  await mkdir(kubectlDir, { recursive: true });
  if (!existsSync(join(kubectlDir, 'kubectl'))) await symlink(state.kubectl, join(kubectlDir, 'kubectl'));
  const reportName = 'chainsaw-report';
  say(`running chainsaw on ${dirs.join(', ')}`);
  const status = await new Promise<number>((resolve) => {
    const chainsaw = spawn(
      join(state.binDir, 'chainsaw'),
      [
        'test',
        '--config',
        repoPath(`${CHAINSAW_DIR}/.chainsaw.yaml`),
        ...dirs.flatMap((dir) => ['--test-dir', repoPath(dir)]),
        '--report-format',
        'JSON',
        '--report-path',
        state.dir,
        '--report-name',
        reportName,
        '--no-color',
      ],
      {
        cwd: repoRoot,
        stdio: 'inherit',
        env: {
          ...process.env,
          KUBECONFIG: state.adminKubeconfig,
          PATH: [kubectlDir, state.binDir, process.env.PATH].join(delimiter),
        },
      },
    );
    chainsaw.on('error', (error) => {
      say(`chainsaw did not start: ${error.message}`);
      resolve(1);
    });
    chainsaw.on('exit', (code) => resolve(code ?? 1));
  });
  const reportFile = join(state.dir, `${reportName}.json`);
  if (!existsSync(reportFile)) return { status: status || 1, pass: 0, fail: 1 };
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as ChainsawReport;
  let pass = 0;
  let fail = 0;
  for (const test of report.tests ?? []) {
    const failures = (test.steps ?? []).flatMap((step) =>
      (step.operations ?? []).filter((o) => o.failure).map((o) => `${step.name}: ${o.failure?.error}`),
    );
    const operations = (test.steps ?? []).reduce((n, step) => n + (step.operations?.length ?? 0), 0);
    fail += failures.length;
    pass += operations - failures.length;
    say(`chainsaw ${failures.length === 0 ? 'ok' : 'not ok'} - ${test.name} (${operations} operations)`);
    for (const failure of failures) say(`  ${failure}`);
  }
  // A failing run with no failed operation (a file chainsaw could not load, say) still fails.
  if (status !== 0 && fail === 0) fail = 1;
  return { status, pass, fail };
}

/** Runs the tap stories one file at a time; its summary line gives the counts. */
async function runStories(stateFile: string, files: string[]): Promise<Outcome> {
  say(`running ${files.length} e2e story file(s)`);
  let out = '';
  const status = await new Promise<number>((resolve) => {
    const tap = spawn(
      repoPath('node_modules/.bin/tap'),
      ['--jobs=1', '--timeout=900', '--disable-coverage', ...files],
      {
        cwd: repoRoot,
        stdio: ['inherit', 'pipe', 'inherit'],
        env: { ...process.env, STS_GUARD_E2E_STATE: stateFile },
      },
    );
    tap.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      out = (out + chunk.toString()).slice(-4096);
    });
    tap.on('exit', (code) => resolve(code ?? 1));
  });
  const summary = [...out.matchAll(/^# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/gm)].at(-1);
  return { status, pass: Number(summary?.[2] ?? 0), fail: Number(summary?.[3] ?? (status === 0 ? 0 : 1)) };
}

async function main(): Promise<number> {
  const started = Date.now();
  const args = process.argv.slice(2);
  const scenarios = args.length > 0 ? args.filter((a) => !a.endsWith('.e2e.ts')) : [CHAINSAW_DIR];
  const stories =
    args.length > 0
      ? args.filter((a) => a.endsWith('.e2e.ts'))
      : readdirSync(repoPath('test/e2e'))
          .filter((f) => f.endsWith('.e2e.ts'))
          .sort()
          .map((f) => join('test/e2e', f));
  let outcomes: Outcome[] = [];
  let stack: Awaited<ReturnType<typeof startE2eStack>> | undefined;
  try {
    stack = await startE2eStack();
    if (scenarios.length > 0) outcomes.push(await runChainsaw(stack.state, scenarios));
    if (stories.length > 0) outcomes.push(await runStories(stack.stateFile, stories));
  } catch (error) {
    say(`e2e run failed: ${error instanceof Error ? error.message : error}`);
    outcomes = [...outcomes, { status: 1, pass: 0, fail: 1 }];
  }
  const status = outcomes.some((o) => o.status !== 0) ? 1 : 0;
  await stack?.stop(status !== 0);
  const pass = outcomes.reduce((n, o) => n + o.pass, 0);
  const fail = outcomes.reduce((n, o) => n + o.fail, 0);
  say(`e2e finished in ${Math.round((Date.now() - started) / 1000)} s with status ${status}`);
  // The chainsaw operations and the tap assertions together, in the form CI's summary reads.
  process.stdout.write(
    `# chainsaw scenarios and tap stories\n# { total: ${pass + fail}, pass: ${pass}, fail: ${fail} }\n`,
  );
  return status;
}

process.exitCode = await main();
