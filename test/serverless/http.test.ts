import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import type { AdmissionReview } from '../../src/admission/types.js';
import type { LocalApiServer } from '../support/apiserver.js';
import { repoRoot } from '../support/repo.js';
import {
  isLiveLookup,
  reviews,
  sameAnswer,
  startApiServer,
  startHttpsReference,
  writeKubeconfig,
} from './reference.js';

// The Knative container's command (deploy/serverless/knative/service.yaml): plain HTTP on PORT.
// Each test starts its own instance against its own API server, so each holds on its own.
const env = {
  SERVICE_CACHE: 'off',
  LOOKUP_TIMEOUT_MS: '8000',
  LOG_LEVEL: 'info',
};

interface Instance {
  child: ChildProcess;
  origin: string;
  post(path: string, review: AdmissionReview): Promise<Response>;
  stop(): Promise<void>;
}

/** A fresh `src/serverless/http.ts` process whose kubeconfig points at `api`, once it listens. */
async function startInstance(api: LocalApiServer): Promise<Instance> {
  const kubeconfig = await writeKubeconfig(api);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/serverless/http.ts'], {
    cwd: repoRoot,
    env: { ...process.env, ...env, KUBECONFIG: kubeconfig.path, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await kubeconfig.remove();
  };
  // The address from the "Server listening at http://…" log line.
  const origin = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('http.ts did not start listening within 20 s')), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const found = buffered.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
      if (found?.[1]) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`http.ts exited with ${code}`)));
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  const post = (path: string, review: AdmissionReview) =>
    fetch(`${origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(review),
    });
  return { child, origin, post, stop };
}

/** A new API server and an instance of its own, both stopped when `t` ends. */
async function startInstanceWithApi(t: Test) {
  const api = await startApiServer();
  const instance = await startInstance(api);
  t.teardown(async () => {
    await instance.stop();
    await api.close();
  });
  return { api, instance };
}

t.test('the plain-HTTP entry for Knative answers exactly as the HTTPS server does', async (t) => {
  const api = await startApiServer();
  const referenceApi = await startApiServer();
  const reference = await startHttpsReference(referenceApi, env);
  const instance = await startInstance(api);
  t.teardown(async () => {
    await instance.stop();
    await reference.close();
    await api.close();
    await referenceApi.close();
  });
  for (const [behaviour, path, review] of reviews) {
    const started = Date.now();
    const expected = await reference.post(path, review);
    const answer = await instance.post(path, review);
    const apart = Math.ceil((Date.now() - started) / 1000);
    t.equal(answer.status, expected.statusCode, `${behaviour}: status`);
    sameAnswer(t, await answer.text(), expected.body, apart, `${behaviour}: the same AdmissionReview`);
  }
  t.equal((await fetch(`${instance.origin}/readyz`)).status, 200, 'ready for Knative’s probe');
});

t.test('with SERVICE_CACHE=off a new instance only GETs the Services it needs', async (t) => {
  const { api, instance } = await startInstanceWithApi(t);
  for (const [behaviour, path, review] of reviews) {
    t.equal((await instance.post(path, review)).status, 200, `${behaviour}: answered`);
  }
  t.ok(api.requests.length > 0, 'the instance asked the API server');
  t.ok(
    api.requests.every(isLiveLookup),
    `no cluster-wide list, no watch: ${[...new Set(api.requests)].join(', ')}`,
  );
});

t.test('SIGTERM drains and exits cleanly (Knative scaling an instance down)', async (t) => {
  const { instance } = await startInstanceWithApi(t);
  const [behaviour, path, review] = reviews[0]!;
  t.equal((await instance.post(path, review)).status, 200, `it has served: ${behaviour}`);
  const exited = once(instance.child, 'exit');
  instance.child.kill('SIGTERM');
  const [code] = await exited;
  t.equal(code, 0);
});
