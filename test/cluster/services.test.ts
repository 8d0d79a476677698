import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { createKubernetesServiceDirectory } from '../../src/cluster/services.js';
import { LocalApiServer } from '../support/apiserver.js';
import { service } from '../support/fixtures.js';

const log = pino({ level: 'silent' });

/** A Service directory on the stand-in API server, closed when the test ends. */
function directoryOf(t: Test, api: LocalApiServer, { timeoutMs = 1000, cache = true } = {}) {
  const directory = createKubernetesServiceDirectory({ timeoutMs, cache, log, kubeConfig: api.kubeConfig() });
  t.teardown(() => directory.close());
  return directory;
}

async function until(condition: () => boolean, what: string) {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

t.test('a warm cache answers look-ups without asking the API server', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  api.put(service('mongodb-headless'));
  const directory = directoryOf(t, api);

  const first = await directory.lookup('grade-submission', 'mongodb-headless');
  t.equal(first.outcome, 'found', 'the first look-up goes live while the cache fills');
  await until(() => directory.cacheWarm(), 'the cache to warm');
  const gets = () => api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/')).length;
  const before = gets();
  const hit = await directory.lookup('grade-submission', 'mongodb-headless');
  t.equal(hit.outcome, 'found');
  t.equal(gets(), before, 'no live GET for a cached Service');
});

t.test('a cache miss falls back to a live GET: a Service created a moment ago is found', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  const directory = directoryOf(t, api);
  await directory.lookup('grade-submission', 'warm-up');
  await until(() => directory.cacheWarm(), 'the cache to warm');

  // Stored without telling the watch, as when the watch event has not arrived yet.
  api.services.set('grade-submission/mongodb-headless', service('mongodb-headless'));
  const found = await directory.lookup('grade-submission', 'mongodb-headless');
  t.equal(found.outcome, 'found');
  t.ok(api.requests.includes('GET /api/v1/namespaces/grade-submission/services/mongodb-headless'));
});

t.test('a Service that does not exist is not-found (HTTP 404), not a failure', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  const directory = directoryOf(t, api, { cache: false });
  t.same(await directory.lookup('grade-submission', 'nope'), { outcome: 'not-found' });
});

t.test('API errors become unavailable with a reason a user can act on', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  const directory = directoryOf(t, api, { timeoutMs: 300, cache: false });

  api.misbehaviour = { kind: 'status', code: 403 };
  const forbidden = await directory.lookup('grade-submission', 'mongodb-headless');
  t.equal(forbidden.outcome, 'unavailable');
  t.match(forbidden, { reason: /HTTP 403.*RBAC/ });

  api.misbehaviour = { kind: 'hang' };
  const slow = await directory.lookup('grade-submission', 'mongodb-headless');
  t.match(slow, { outcome: 'unavailable', reason: 'did not answer within 300 ms' });
});

t.test('without any Kubernetes configuration, look-ups say so instead of failing obscurely', async (t) => {
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  process.env.KUBECONFIG = '/nonexistent/kubeconfig';
  process.env.HOME = '/nonexistent-home';
  delete process.env.KUBERNETES_SERVICE_HOST;
  const directory = createKubernetesServiceDirectory({ timeoutMs: 500, cache: true, log });
  t.teardown(() => directory.close());
  const result = await directory.lookup('grade-submission', 'mongodb-headless');
  t.match(result, {
    outcome: 'unavailable',
    reason: /no Kubernetes configuration found|could not be reached/,
  });
});

t.test('start() fills the cache before the first review, which then needs no live GET', async (t) => {
  const api = await new LocalApiServer().start();
  t.teardown(() => api.close());
  api.put(service('mongodb-headless'));
  const directory = directoryOf(t, api);
  directory.start();
  await until(() => directory.cacheWarm(), 'the cache to warm');
  const found = await directory.lookup('grade-submission', 'mongodb-headless');
  t.equal(found.outcome, 'found');
  t.equal(api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/')).length, 0, 'no live GET');
});

t.test(
  'until its first LIST has answered, the cache is not trusted: a namespace is listed live',
  async (t) => {
    // The informer reports 'connect' before that LIST; an empty cache taken as warm would say the
    // namespace has no Services, and client-routing would miss the one that load-balances.
    const api = await new LocalApiServer().start();
    t.teardown(() => api.close());
    api.put(service('mongodb', 'grade-submission', '10.96.0.20'));
    api.misbehaveOn(/^\/api\/v1\/services$/, { kind: 'delay', ms: 400 });
    const directory = directoryOf(t, api);
    directory.start();
    await until(() => api.requests.includes('GET /api/v1/services'), 'the informer to send its LIST');
    t.notOk(directory.cacheWarm(), 'not warm while the LIST is outstanding');
    const listed = await directory.list?.('grade-submission');
    t.same(listed?.outcome === 'found' ? listed.services.map((s) => s.metadata?.name) : listed, ['mongodb']);
    t.ok(api.requests.includes('GET /api/v1/namespaces/grade-submission/services'), 'asked the API server');
    await until(() => directory.cacheWarm(), 'the cache to warm');
    const cached = await directory.list?.('grade-submission');
    t.same(cached?.outcome === 'found' ? cached.services.map((s) => s.metadata?.name) : cached, ['mongodb']);
  },
);

t.test('start() without a cluster logs why once; each look-up reports the same reason', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const recording = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const directory = createKubernetesServiceDirectory({
    timeoutMs: 500,
    cache: true,
    log: recording,
    // A KubeConfig with nothing loaded: no cluster, as off-cluster without KUBECONFIG.
    kubeConfig: new KubeConfig(),
  });
  t.teardown(() => directory.close());
  directory.start();
  await until(() => lines.length > 0, 'the warning');
  t.match(lines[0], {
    msg: 'Service look-ups are unavailable; each review that needs one says so',
    reason: /no Kubernetes configuration found/,
  });
  const result = await directory.lookup('grade-submission', 'mongodb-headless');
  t.match(result, { outcome: 'unavailable', reason: /no Kubernetes configuration found/ });
  t.equal(lines.length, 1, 'logged once');
});
