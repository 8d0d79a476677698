/**
 * `npm run test:e2e:lambda`: sts-guard's Lambda bundle against the real control plane, through the
 * real Lambda runtime: kube-apiserver → the Function URL front (support/function-url.ts, the one
 * STAND-IN here) → the Lambda Runtime Interface Emulator → the runtime interface client →
 * dist/lambda's index.handler. Registered with deploy/serverless/webhook-url as docs/deploy.md
 * registers a Function URL. `npm start` runs beside it for the comparisons (same answers, latency).
 *
 *   npm run test:e2e:lambda                          every story (the list below)
 *   npm run test:e2e:lambda -- test/e2e/seed.e2e.ts  one file
 *   STS_GUARD_E2E_LAMBDA_LIMITS=0                    no 512 MB memory and CPU limits (cgroups)
 *   STS_GUARD_E2E_KEEP=1                             keep the state directory afterwards
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../support/processes.js';
import { repoRoot } from '../support/repo.js';
import { type ControlPlane, startControlPlane } from './support/control-plane.js';
import { emulatorInvoke, type FunctionUrl, startFunctionUrl } from './support/function-url.js';
import {
  FUNCTION_MEMORY_MB,
  FUNCTION_TIMEOUT_S,
  type LambdaE2eState,
  type LambdaFunctionProcess,
  startLambdaFunction,
  stopLambdaFunction,
} from './support/lambda.js';
import {
  buildScriptOutput,
  CHAINSAW_DIR,
  clusterKubectl,
  controlPlaneBinaries,
  kubectl,
  type Outcome,
  renderWebhookUrl,
  runChainsaw,
  runStories,
  say,
  serverCertificate,
} from './support/setup.js';
import { type StsGuardProcess, startStsGuardAs, stopStsGuard, stsGuardPort } from './support/sts-guard.js';

const run = promisify(execFile);

/**
 * The stories on this path: the Deployment path's own seed, scale and Service-protection stories,
 * unchanged (they only drive kubectl, whichever endpoint is registered), then the Lambda path's.
 */
// The seed, scale and Service-protection scenarios (test/e2e/chainsaw/) run on this path too.
const STORIES = [
  'test/e2e/lambda/mutation.e2e.ts',
  'test/e2e/lambda/same-answers.e2e.ts',
  'test/e2e/lambda/latency.e2e.ts',
];

/** docs/deploy.md step 2's kubeconfig: the API server, its CA inline, the token Secret's token. */
function lambdaKubeconfig(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return `apiVersion: v1
kind: Config
clusters: [{name: cluster, cluster: {server: "${server}", certificate-authority-data: "${ca}"}}]
users: [{name: sts-guard, user: {token: "${token}"}}]
contexts: [{name: sts-guard, context: {cluster: cluster, user: sts-guard}}]
current-context: sts-guard
`;
}

async function main(): Promise<number> {
  const started = Date.now();
  const binDir = await controlPlaneBinaries();
  const emulator = await buildScriptOutput('test/e2e/control-plane/build-lambda-emulator.sh');
  const kubectlPath = clusterKubectl(binDir);
  say(`control plane binaries: ${binDir}; emulator: ${emulator}; kubectl: ${kubectlPath}`);
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH}`;
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-e2e-lambda-'));
  await mkdir(join(dir, 'logs'), { recursive: true });
  const layer = await buildScriptOutput('deploy/serverless/build-ric-layer.sh', [
    '--out',
    join(dir, 'ric-layer'),
  ]);
  let plane: ControlPlane | undefined;
  let stsGuard: StsGuardProcess | undefined;
  let fn: LambdaFunctionProcess | undefined;
  let front: FunctionUrl | undefined;
  const stateFile = join(dir, 'state.json');
  let status = 1;
  const outcomes: Outcome[] = [];
  try {
    // docs/deploy.md, "Serverless: AWS Lambda", step 1: the bundle (the task root, /var/task).
    const taskRoot = join(dir, 'task');
    await run(process.execPath, [join(repoRoot, 'deploy/serverless/build-lambda.mjs'), '--outdir', taskRoot]);

    say('starting etcd, kube-apiserver and kube-controller-manager');
    plane = await startControlPlane(binDir, join(dir, 'control-plane'));
    const admin = plane.adminKubeconfig;
    say(`API server ready at ${plane.server}`);

    // Step 2: the identity for the function's look-ups, and its kubeconfig in the package.
    await kubectl(kubectlPath, admin, ['apply', '-k', join(repoRoot, 'deploy/common')]);
    await kubectl(kubectlPath, admin, [
      'apply',
      '-f',
      join(repoRoot, 'deploy/serverless/webhook-url/lambda-token.yaml'),
    ]);
    let token = '';
    for (let i = 0; i < 120 && !token; i++) {
      const data = await kubectl(kubectlPath, admin, [
        '-n',
        'sts-guard',
        'get',
        'secret',
        'sts-guard-lambda-token',
        '-o',
        'jsonpath={.data.token}',
      ]);
      token = Buffer.from(data, 'base64').toString('utf8');
      if (!token) await sleep(500);
    }
    if (!token) throw new Error('the token controller never filled Secret sts-guard/sts-guard-lambda-token');
    const caPem = await readFile(plane.caFile, 'utf8');
    await writeFile(join(taskRoot, 'kubeconfig'), lambdaKubeconfig(plane.server, caPem, token), {
      mode: 0o600,
    });

    // The serving certificate of the front (and of `npm start`): certs/generate.sh, as run.ts does.
    const certs = await serverCertificate(dir);

    // Step 3: the function (memory 512 MB, timeout 10 s, KUBECONFIG, LOOKUP_TIMEOUT_MS, LOG_LEVEL).
    fn = await startLambdaFunction({
      emulator,
      layer,
      taskRoot,
      environment: {
        KUBECONFIG: join(taskRoot, 'kubeconfig'),
        LOOKUP_TIMEOUT_MS: '1500',
        LOG_LEVEL: 'info',
      },
      port: await freePort(),
      runtimeApiPort: await freePort(),
      logFile: join(dir, 'logs', 'lambda.log'),
      limits: process.env.STS_GUARD_E2E_LAMBDA_LIMITS !== '0',
    });
    say(
      `function under aws-lambda-rie at ${fn.url} (${FUNCTION_MEMORY_MB} MB, ${FUNCTION_TIMEOUT_S} s; ${
        'none' in fn.limits
          ? `no limits: ${fn.limits.none}`
          : `cgroups: ${fn.limits.memoryBytes >> 20} MiB, ${fn.limits.cpuQuotaUs}/${fn.limits.cpuPeriodUs} µs CPU`
      })`,
    );
    const journal = join(dir, 'function-url.jsonl');
    await writeFile(journal, '');
    front = await startFunctionUrl({
      cert: await readFile(join(certs, 'tls.crt'), 'utf8'),
      key: await readFile(join(certs, 'tls.key'), 'utf8'),
      invoke: emulatorInvoke(fn.url),
      journal,
    });
    say(`Function URL front (stand-in) at ${front.url}`);

    // The Deployment path beside it, as run.ts starts it: `npm start` with a TokenRequest token.
    const saToken = (
      await kubectl(kubectlPath, admin, ['create', 'token', 'sts-guard', '-n', 'sts-guard', '--duration=6h'])
    ).trim();
    say('starting sts-guard with `npm start` (the Deployment path, for the comparisons)');
    stsGuard = await startStsGuardAs({
      token: saToken,
      server: plane.server,
      clusterCaFile: plane.caFile,
      certs,
      dir,
    });
    const port = stsGuardPort(stsGuard);

    // Step 4: deploy/serverless/webhook-url, pointed at the front.
    const webhooks = await renderWebhookUrl(
      binDir,
      `127.0.0.1:${front.port}`,
      await readFile(join(certs, 'ca.crt'), 'utf8'),
    );
    await writeFile(join(dir, 'webhooks.yaml'), webhooks);
    await kubectl(kubectlPath, admin, ['apply', '-f', join(dir, 'webhooks.yaml')]);

    const state: LambdaE2eState = {
      server: plane.server,
      adminKubeconfig: admin,
      clusterCaFile: plane.caFile,
      auditLog: plane.auditLog,
      dir,
      binDir,
      kubectl: kubectlPath,
      stsGuard,
      stsGuardPort: port,
      lambda: { function: fn, frontUrl: front.url, frontPort: front.port, journal },
    };
    await writeFile(stateFile, JSON.stringify(state, null, 2));

    const args = process.argv.slice(2);
    const scenarios = args.length > 0 ? args.filter((a) => !a.endsWith('.e2e.ts')) : [CHAINSAW_DIR];
    const stories = args.length > 0 ? args.filter((a) => a.endsWith('.e2e.ts')) : STORIES;
    if (scenarios.length > 0) outcomes.push(await runChainsaw(state, scenarios));
    if (stories.length > 0) outcomes.push(await runStories(stateFile, stories));
    status = outcomes.some((o) => o.status !== 0) ? 1 : 0;
  } catch (error) {
    say(`setup failed: ${error instanceof Error ? error.message : error}`);
    status = 1;
    outcomes.push({ status: 1, pass: 0, fail: 1 });
  } finally {
    const state = existsSync(stateFile)
      ? (JSON.parse(await readFile(stateFile, 'utf8')) as LambdaE2eState)
      : undefined;
    const running = state?.lambda.function ?? fn;
    if (running) await stopLambdaFunction(running);
    await front?.close();
    const pid = state?.stsGuard.pid ?? stsGuard?.pid;
    if (pid) await stopStsGuard(pid);
    await plane?.stop();
    const keep = process.env.STS_GUARD_E2E_KEEP === '1' || status !== 0;
    if (keep) say(`state, logs and kubeconfigs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
    say(`e2e (Lambda path) finished in ${Math.round((Date.now() - started) / 1000)} s with status ${status}`);
  }
  const pass = outcomes.reduce((n, o) => n + o.pass, 0);
  const fail = outcomes.reduce((n, o) => n + o.fail, 0);
  // The chainsaw operations and the tap assertions together, in the form CI's summary reads.
  process.stdout.write(
    `# Lambda path: chainsaw scenarios and tap stories\n# { total: ${pass + fail}, pass: ${pass}, fail: ${fail} }\n`,
  );
  return status;
}

process.exitCode = await main();
