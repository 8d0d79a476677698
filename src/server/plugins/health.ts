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
    if (draining) return;
    draining = true;
    // While draining, every answer asks kept-alive clients to reconnect, which lands them on a
    // ready replica. Set on the response before Fastify handles the request, and only from now on:
    // an onSend hook doing it ran on every review of the process's life (bench/README.md, issue 21).
    app.server.prependListener('request', (_request, response) => {
      response.setHeader('connection', 'close');
    });
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready' },
  );
}

export const healthPlugin = fp(health, { name: 'sts-guard-health' });
