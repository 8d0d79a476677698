/**
 * `npm run test:e2e:argocd`: Argo CD itself syncs the grade-submission bundle, against the same
 * real control plane and sts-guard as `npm run test:e2e` (support/stack.ts). Adds Argo CD built
 * from its Go module (test/e2e/control-plane/build-argocd.sh): Redis, the repo-server, the
 * application controller and the ApplicationSet controller; a local Git repository holding this
 * checkout's HEAD; the in-cluster cluster Secret from docs/gitops.md; and kustomize/argocd's
 * projects and ApplicationSet pointed at that repository. Then runs test/e2e/argocd/*.e2e.ts.
 *
 *   npm run test:e2e:argocd                                   every story
 *   npm run test:e2e:argocd -- test/e2e/argocd/dev.e2e.ts     one file
 *   STS_GUARD_E2E_ARGOCD_WINDOW=60 npm run test:e2e:argocd    a shorter no-flapping window (s)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoPath } from '../../support/repo.js';
import { kubectlOk } from '../support/env.js';
import { histogramBuckets, quantile } from '../support/histogram.js';
import { buildScriptOutput, type Outcome, runStories } from '../support/setup.js';
import { type E2eStack, say, startE2eStack } from '../support/stack.js';
import { renderArgoCdBundle } from './support/bundle.js';
import { ARGOCD_NAMESPACE, type ArgoCdProcesses, startArgoCd } from './support/components.js';
import { clusterSecretSnippet } from './support/docs.js';
import type { ArgoCdState } from './support/env.js';
import { createLocalRepository } from './support/git.js';

/** The controller's own figures for test/e2e/README.md: reconciles, syncs, Kubernetes requests. */
async function controllerFigures(metricsUrl: string) {
  const text = await (await fetch(metricsUrl)).text();
  const sum = (name: string, filter = '') =>
    text
      .split('\n')
      .filter((l) => l.startsWith(name) && l.includes(filter))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const reconcile = histogramBuckets(text, 'argocd_app_reconcile', {});
  const count = sum('argocd_app_reconcile_count');
  return {
    reconciles: count,
    reconcileMeanSeconds: count > 0 ? sum('argocd_app_reconcile_sum') / count : 0,
    reconcileP50Seconds: quantile(reconcile, 0.5),
    reconcileP95Seconds: quantile(reconcile, 0.95),
    reconcileBuckets: Object.fromEntries([...reconcile].map(([le, n]) => [String(le), n])),
    syncs: Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l.startsWith('argocd_app_sync_total{'))
        .map((l) => [
          `${/name="([^"]+)"/.exec(l)?.[1]} ${/phase="([^"]+)"/.exec(l)?.[1]}`,
          Number(l.slice(l.lastIndexOf(' ') + 1)),
        ]),
    ),
    k8sRequests: sum('argocd_app_k8s_request_total{'),
  };
}

async function main(): Promise<number> {
  const started = Date.now();
  // Argo CD's build first: a cold one takes minutes, which a started control plane would sit out.
  const argocdDir =
    process.env.STS_GUARD_E2E_ARGOCD ?? (await buildScriptOutput('test/e2e/control-plane/build-argocd.sh'));
  let stack: E2eStack | undefined;
  let argocd: ArgoCdProcesses | undefined;
  let outcome: Outcome = { status: 1, pass: 0, fail: 1 };
  try {
    stack = await startE2eStack();
    const { state, stateFile } = stack;
    const dir = state.dir;
    const k = (args: string[], input?: string) => kubectlOk(state, args, input);

    const repo = await createLocalRepository(join(dir, 'git'));
    say(`local repository ${repo.url} at ${repo.tested}`);
    if (repo.dirty.length > 0) {
      say(
        `warning: uncommitted changes are not in the repository Argo CD syncs:\n  ${repo.dirty.join('\n  ')}`,
      );
    }

    say(`starting Argo CD from ${argocdDir}`);
    argocd = await startArgoCd(state, argocdDir, join(dir, 'argocd'));
    say('Argo CD repo-server, application controller and ApplicationSet controller ready');

    // docs/gitops.md step 3, as written; no environment yet (each story picks its overlay).
    const secret = clusterSecretSnippet();
    delete secret.metadata?.labels?.['sts-guard.io/environment'];
    await k(['apply', '-n', ARGOCD_NAMESPACE, '-f', '-'], stringify(secret));
    const bundle = await renderArgoCdBundle(state.binDir, repo);
    await k(['apply', '--server-side', '-n', ARGOCD_NAMESPACE, '-f', '-'], bundle.yaml);
    say(`applied kustomize/argocd: ${bundle.kinds.join(', ')}`);

    const figures = join(dir, 'figures.jsonl');
    const argoState: ArgoCdState = {
      ...state,
      argocd: {
        build: argocdDir,
        dir: join(dir, 'argocd'),
        kubeconfig: argocd.kubeconfig,
        metrics: argocd.metrics,
        logs: argocd.logs,
        repo,
        figures,
      },
    };
    await writeFile(stateFile, JSON.stringify(argoState, null, 2));

    const files = process.argv.slice(2);
    // tap runs them in name order; each starts from the tested commit and an empty namespace.
    const tests =
      files.length > 0
        ? files
        : readdirSync(repoPath('test/e2e/argocd'))
            .filter((f) => f.endsWith('.e2e.ts'))
            .map((f) => join('test/e2e/argocd', f));
    say(`running ${tests.length} Argo CD e2e file(s)`);
    outcome = await runStories(stateFile, tests, 1800);

    const controller = await controllerFigures(argocd.metrics.controller);
    say(`argocd-application-controller: ${JSON.stringify(controller)}`);
    if (existsSync(figures)) {
      for (const line of readFileSync(figures, 'utf8').split('\n').filter(Boolean)) say(`figure: ${line}`);
    }
    if (process.env.STS_GUARD_E2E_ARGOCD_OUT) {
      const recorded = existsSync(figures)
        ? readFileSync(figures, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as unknown)
        : [];
      await writeFile(
        process.env.STS_GUARD_E2E_ARGOCD_OUT,
        JSON.stringify({ controller, figures: recorded }, null, 2),
      );
    }
  } catch (error) {
    say(`Argo CD e2e run failed: ${error instanceof Error ? error.message : error}`);
    outcome = { status: 1, pass: outcome.pass, fail: outcome.fail + 1 };
  } finally {
    await argocd?.stop();
    await stack?.stop(outcome.status !== 0);
    say(
      `Argo CD e2e finished in ${Math.round((Date.now() - started) / 1000)} s with status ${outcome.status}`,
    );
  }
  // The tap assertions, in the form CI's summary reads.
  process.stdout.write(
    `# Argo CD stories\n# { total: ${outcome.pass + outcome.fail}, pass: ${outcome.pass}, fail: ${outcome.fail} }\n`,
  );
  return outcome.status;
}

process.exitCode = await main();
