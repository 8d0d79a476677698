import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoPath } from '../support/repo.js';
import { CHAINSAW_DIR, type Outcome, runChainsaw, runStories } from './support/setup.js';
import { say, startE2eStack } from './support/stack.js';

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
