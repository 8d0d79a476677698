import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { pino } from 'pino';
import t from 'tap';
import { connectionReuse, IDLE_CONNECTION_MS } from '../../src/cluster/client.js';
import { createKubernetesConfigMapDirectory } from '../../src/cluster/configmaps.js';
import { createKubernetesPersistentVolumeClaimDirectory } from '../../src/cluster/persistentvolumeclaims.js';
import { createKubernetesStatefulSetDirectory } from '../../src/cluster/statefulsets.js';
import { LocalApiServer } from '../support/apiserver.js';
import { replicaSet } from '../support/fixtures.js';

const log = pino({ level: 'silent' });

async function started(timeoutMs = 1500) {
  const api = await new LocalApiServer().start();
  const options = { timeoutMs, log, kubeConfig: api.kubeConfig() };
  api.putStatefulSet(replicaSet());
  return {
    api,
    statefulSets: createKubernetesStatefulSetDirectory(options),
    configMaps: createKubernetesConfigMapDirectory(options),
    claims: createKubernetesPersistentVolumeClaimDirectory(options),
  };
}

t.test('look-ups in sequence share one connection to the API server', async (t) => {
  const { api, statefulSets, configMaps, claims } = await started();
  t.teardown(() => api.close());
  t.equal((await statefulSets.get('grade-submission', 'mongodb')).outcome, 'found');
  t.equal((await configMaps.lookup('grade-submission', 'mongod-config')).outcome, 'not-found');
  t.equal((await claims.list('grade-submission')).outcome, 'found');
  t.equal((await statefulSets.list('grade-submission')).outcome, 'found');
  t.equal(api.requests.length, 4);
  t.equal(api.connections, 1, 'four look-ups, one TCP connection');
});

t.test('a connection the API server closed is not reused: the next look-up opens a new one', async (t) => {
  const { api, statefulSets } = await started();
  t.teardown(() => api.close());
  t.equal((await statefulSets.get('grade-submission', 'mongodb')).outcome, 'found');
  // Closed while idle, and the look-up sent before this process has even read the close: the
  // request fails on the dead connection and is sent again on a new one.
  api.dropIdleConnections();
  t.equal((await statefulSets.get('grade-submission', 'mongodb')).outcome, 'found');
  t.equal(api.connections, 2);
  t.same(
    api.requests.filter((r) => r.startsWith('GET /apis/apps/v1/namespaces/grade-submission/statefulsets/'))
      .length,
    2,
    'the server saw each look-up once',
  );
});

t.test('a look-up abandoned at the budget leaves no broken connection behind', async (t) => {
  const { api, statefulSets } = await started(200);
  t.teardown(() => api.close());
  api.misbehaviour = { kind: 'hang' };
  const hung = await statefulSets.get('grade-submission', 'mongodb');
  t.equal(hung.outcome, 'unavailable');
  api.behave();
  t.equal(
    (await statefulSets.get('grade-submission', 'mongodb')).outcome,
    'found',
    'the next one is answered',
  );
});

t.test('connectionReuse keeps one keep-alive agent per TLS material', async (t) => {
  const reuse = connectionReuse();
  const ca = Buffer.from('a CA certificate');
  const first = reuse(new HttpsAgent({ ca }));
  t.not(first.constructor, HttpAgent, 'an https agent stays https');
  t.ok(first instanceof HttpsAgent);
  t.ok((first as HttpsAgent & { keepAlive: boolean }).keepAlive, 'kept alive');
  t.equal((first as HttpsAgent).options.timeout, IDLE_CONNECTION_MS, 'closes idle connections itself');
  t.equal((first as HttpsAgent).options.ca, ca, 'with the TLS material of the agent the client made');

  t.equal(
    reuse(new HttpsAgent({ ca: Buffer.from('a CA certificate') })),
    first,
    'same material (a new Buffer, same bytes): same agent',
  );

  let destroyed = false;
  first.destroy = () => {
    destroyed = true;
  };
  const rotated = reuse(new HttpsAgent({ ca, cert: 'a rotated client certificate' }));
  t.not(rotated, first, 'new material: a new agent');
  t.ok(destroyed, "and the old agent's connections are closed");

  class ProxyAgent extends HttpsAgent {}
  const proxy = new ProxyAgent();
  t.equal(reuse(proxy), proxy, 'a proxy agent is used as the client made it');
});
