/**
 * `npm run test:e2e`: sts-guard against a real control plane (etcd, kube-apiserver,
 * kube-controller-manager built by test/e2e/control-plane/build.sh), driven by the kubectl built
 * beside them (same minor version as the API server). Starts everything once (support/suite.ts),
 * runs the e2e test files (test/e2e/*.e2e.ts) one after another with STS_GUARD_E2E_STATE naming
 * what was started, then tears everything down.
 *
 *   npm run test:e2e                      every story
 *   npm run test:e2e -- test/e2e/drift.e2e.ts   one file
 *   STS_GUARD_E2E_KEEP=1 npm run test:e2e keep the state directory (logs, kubeconfigs) afterwards
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './support/sts-guard.js';
import { runStories, type Suite, say, startSuite, stopSuite } from './support/suite.js';

async function main(): Promise<number> {
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-e2e-'));
  const stateFile = join(dir, 'state.json');
  let suite: Suite | undefined;
  let status = 1;
  try {
    suite = await startSuite(dir);
    await writeFile(stateFile, JSON.stringify(suite.state, null, 2));

    const files = process.argv.slice(2);
    const tests =
      files.length > 0
        ? files
        : readdirSync(join(repoRoot, 'test/e2e'))
            .filter((f) => f.endsWith('.e2e.ts'))
            .sort()
            .map((f) => join('test/e2e', f));
    say(`running ${tests.length} e2e file(s)`);
    status = await runStories(tests, stateFile);
  } catch (error) {
    say(`setup failed: ${error instanceof Error ? error.message : error}`);
    status = 1;
  } finally {
    await stopSuite(suite, stateFile, dir, process.env.STS_GUARD_E2E_KEEP === '1' || status !== 0);
    say(`e2e finished in ${Math.round((Date.now() - started) / 1000)} s with status ${status}`);
  }
  return status;
}

process.exitCode = await main();
