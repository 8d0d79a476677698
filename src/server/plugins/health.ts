import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    /** Marks the instance not ready (readyz 503) while it drains before closing. */
    startDraining(): void;
  }
}

/** Liveness and readiness for kubelet; readiness turns 503 once draining starts on SIGTERM. */
async function health(app: FastifyInstance) {
  let draining = false;
  app.decorate('startDraining', () => {
    draining = true;
  });
  // While draining, every answer asks kept-alive clients to reconnect, which lands them on a ready replica.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready' },
  );
}

export const healthPlugin = fp(health, { name: 'sts-guard-health' });
