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

t.test('every request a registered rule sends has a handler on that path', async (t) => {
  for (const request of sent) {
    const bound = BINDINGS.filter(
      (b) =>
        b.path === request.path &&
        b.group === request.group &&
        b.resource === request.resource &&
        b.subResource === request.subResource &&
        (b.operations as readonly string[]).includes(request.operation),
    );
    t.equal(
      bound.length,
      1,
      `${request.webhook}: ${request.operation} ${request.group || 'core'}/${request.resource}${request.subResource ? `/${request.subResource}` : ''} → ${request.path}`,
    );
  }
});

t.test(
  'every handler serves something a registered rule sends: no route the API server never calls',
  async (t) => {
    for (const binding of BINDINGS) {
      for (const operation of binding.operations) {
        const registered = sent.some(
          (r) =>
            r.path === binding.path &&
            r.group === binding.group &&
            r.resource === binding.resource &&
            r.subResource === binding.subResource &&
            r.operation === operation,
        );
        t.ok(
          registered,
          `${binding.path} ${operation} ${binding.group || 'core'}/${binding.resource}${binding.subResource ? `/${binding.subResource}` : ''} is registered in deploy/webhooks/webhooks.yaml`,
        );
      }
    }
  },
);
