import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { repoRoot } from '../deploy/render.js';
import { isLiveLookup, reviews, startApiServer, startHttpsReference, writeKubeconfig } from './reference.js';

// The Knative container's command (deploy/serverless/knative/service.yaml): plain HTTP on PORT.
const api = await startApiServer();
const referenceApi = await startApiServer();
const kubeconfig = await writeKubeconfig(api);
const env = {
  KUBECONFIG: kubeconfig.path,
  SERVICE_CACHE: 'off',
  LOOKUP_TIMEOUT_MS: '8000',
  LOG_LEVEL: 'info',
};
const reference = await startHttpsReference(referenceApi, env);

const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/serverless/http.ts'], {
  cwd: repoRoot,
  env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
t.teardown(async () => {
  if (child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await reference.close();
  await api.close();
  await referenceApi.close();
  await kubeconfig.remove();
});

/** The address from the "Server listening at http://…" log line. */
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
});

t.test('the plain-HTTP entry for Knative answers exactly as the HTTPS server does', async (t) => {
  for (const [behaviour, path, review] of reviews) {
    const expected = await reference.post(path, review);
    const answer = await fetch(`${origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(review),
    });
    t.equal(answer.status, expected.statusCode, `${behaviour}: status`);
    t.equal(await answer.text(), expected.body, `${behaviour}: the same AdmissionReview`);
  }
  t.equal((await fetch(`${origin}/readyz`)).status, 200, 'ready for Knative’s probe');
});

t.test('with SERVICE_CACHE=off a new instance only GETs the Services it needs', async (t) => {
  t.ok(api.requests.length > 0, 'the instance asked the API server');
  t.ok(
    api.requests.every(isLiveLookup),
    `no cluster-wide list, no watch: ${[...new Set(api.requests)].join(', ')}`,
  );
});

t.test('SIGTERM drains and exits cleanly (Knative scaling an instance down)', async (t) => {
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
});
