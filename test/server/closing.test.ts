import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { createDevelopmentCertificate } from '../../src/server/tls.js';
import { LocalApiServer } from '../support/apiserver.js';
import { admissionReview, replicaSet, service } from '../support/fixtures.js';
import { eventually } from '../support/wait.js';
import { webhookAgainst } from '../support/webhook.js';

t.test(
  'a review arriving on a kept-alive connection after closing began is answered, not refused with 503',
  async (t) => {
    const api = await new LocalApiServer().start();
    api.put(service('mongodb-headless'));
    t.teardown(() => api.close());
    const certificate = await createDevelopmentCertificate(
      await mkdtemp(join(tmpdir(), 'sts-guard-closing-')),
    );
    const webhook = await webhookAgainst(api.kubeConfig(), {
      timeoutMs: 5000,
      https: { key: certificate.key, cert: certificate.cert },
    });
    const { port } = new URL(await webhook.app.listen({ port: 0, host: '127.0.0.1' }));
    // Warm the client library, so the slow review below is slow only because of the API server.
    await webhook.app.inject({
      method: 'POST',
      url: '/validate',
      payload: admissionReview({ object: replicaSet() }),
    });
    api.misbehaviour = { kind: 'delay', ms: 300 };
    const warmUpRequests = api.requests.length;

    const first = admissionReview({ object: replicaSet() });
    const second = admissionReview({ object: replicaSet() });
    const http = (review: object) => {
      const body = JSON.stringify(review);
      return `POST /validate HTTP/1.1\r\nHost: sts-guard\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };

    // One kept-alive connection, as kube-apiserver holds them: the first review is in flight when
    // closing begins; the second is sent on the same connection once the first is answered.
    const socket = connect({
      host: '127.0.0.1',
      port: Number(port),
      ca: certificate.cert,
      servername: 'localhost',
    });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const before = received;
      received += chunk;
      if (!before.includes(first.request.uid) && received.includes(first.request.uid))
        socket.write(http(second));
    });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write(http(first));
    // The first review's look-up has reached the (slow) API server.
    await eventually(
      "the first review's Service look-up at the API server",
      () => (api.requests.length > warmUpRequests ? true : undefined),
      5000,
      10,
    );
    const closing = webhook.close();
    await closed;
    await closing;

    const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    t.same(statuses, ['200', '200'], 'both reviews answered with 200');
    t.ok(received.includes(second.request.uid), 'the second review is decided (uid echoed)');
    t.match(received, /\r\nconnection: close\r\n/i, 'and the client is told to reconnect elsewhere');
  },
);
