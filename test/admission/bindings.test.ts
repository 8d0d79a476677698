import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { BINDINGS } from '../../src/admission/bindings.js';

/** The rules the API server sends sts-guard, as deploy/ registers them. */
interface WebhookRule {
  apiGroups: string[];
  resources: string[];
  operations: string[];
}
interface Webhook {
  name: string;
  clientConfig: { service?: { path?: string }; url?: string };
  rules: WebhookRule[];
}

const webhooks = parseAllDocuments(
  readFileSync(new URL('../../deploy/webhooks/webhooks.yaml', import.meta.url), 'utf8'),
).flatMap((doc) => (doc.toJS() as { webhooks: Webhook[] }).webhooks);

/** Every (path, group, resource, subresource, operation) the registered rules can send. */
const sent = webhooks.flatMap((webhook) =>
  webhook.rules.flatMap((rule) =>
    rule.apiGroups.flatMap((group) =>
      rule.resources.flatMap((plural) =>
        rule.operations.map((operation) => {
          const [resource = '', subResource = ''] = plural.split('/');
          return {
            webhook: webhook.name,
            path: webhook.clientConfig.service?.path,
            group,
            resource,
            subResource,
            operation,
          };
        }),
      ),
    ),
  ),
);

t.test('the registered webhooks are what this test reads', async (t) => {
  t.same(
    webhooks.map((w) => w.name),
    ['mutate.sts-guard.io', 'validate.sts-guard.io', 'services.validate.sts-guard.io'],
  );
  t.ok(sent.length >= 9, `${sent.length} (path, resource, operation) combinations registered`);
});

/** One request the API server may send: where, about what, which operation. */
interface Route {
  path: string | undefined;
  group: string;
  resource: string;
  subResource: string;
  operation: string;
}

const sameRoute = (a: Route, b: Route) =>
  a.path === b.path &&
  a.group === b.group &&
  a.resource === b.resource &&
  a.subResource === b.subResource &&
  a.operation === b.operation;

const describeRoute = (r: Route) =>
  `${r.operation} ${r.group || 'core'}/${r.resource}${r.subResource ? `/${r.subResource}` : ''} → ${r.path}`;

/** Every route a binding serves, one per operation. */
const bound: Route[] = BINDINGS.flatMap((b) => b.operations.map((operation) => ({ ...b, operation })));

t.test('every request a registered rule sends has exactly one handler on that path', async (t) => {
  for (const request of sent) {
    const handlers = bound.filter((b) => sameRoute(b, request));
    t.equal(handlers.length, 1, `${request.webhook}: ${describeRoute(request)}`);
  }
});

t.test(
  'every handler serves something a registered rule sends: no route the API server never calls',
  async (t) => {
    for (const route of bound) {
      t.ok(
        sent.some((r) => sameRoute(r, route)),
        `${describeRoute(route)} is registered in deploy/webhooks/webhooks.yaml`,
      );
    }
  },
);
