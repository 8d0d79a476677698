// STAND-IN for the API server's CEL: a JavaScript CEL library evaluates deploy/'s matchConditions
// here, for fast feedback on many request shapes. The real kube-apiserver compiles and evaluates
// them in test/e2e/registration.e2e.ts.
import type {
  V1MutatingWebhookConfiguration,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { evaluate } from '@marcbachmann/cel-js';
import t from 'tap';
import { admissionReview, replicaSet, service, statefulSet } from '../support/fixtures.js';
import { scaleReview } from '../support/reviews.js';
import { Rendered } from './render.js';

/**
 * Evaluates the rendered matchConditions with a CEL interpreter, the way the API server does
 * before it calls the webhook: every condition true means the webhook is called. Kubernetes
 * types integer fields as CEL int, so whole numbers go in as BigInt.
 */
function asCel(value: unknown): unknown {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(asCel);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asCel(v)]));
  return value;
}

const rendered = await Rendered.of('deploy/overlays/cert-manager');
const mutating = rendered.one<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration');
const validating = rendered.one<V1ValidatingWebhookConfiguration>('ValidatingWebhookConfiguration');
const webhook = (name: string) => {
  const found = [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])].find((w) => w.name === name);
  if (!found) throw new Error(`no webhook ${name}`);
  return found;
};

function called(webhookName: string, review: ReturnType<typeof admissionReview>): boolean {
  const { request } = review;
  const vars = asCel({
    object: request.object ?? null,
    oldObject: request.oldObject ?? null,
    request,
  }) as Record<string, unknown>;
  return (webhook(webhookName).matchConditions ?? []).every((c) => evaluate(c.expression, vars) === true);
}

const serviceKind = { group: '', version: 'v1', kind: 'Service' };
const serviceResource = { group: '', version: 'v1', resource: 'services' };

t.test('StatefulSet webhooks are called for MongoDB StatefulSets and skipped for others', async (t) => {
  for (const name of ['mutate.sts-guard.io', 'validate.sts-guard.io']) {
    t.equal(called(name, admissionReview({ object: replicaSet() })), true, `${name}: mongo:4.4`);
    t.equal(
      called(name, admissionReview({ object: statefulSet({ image: 'bitnami/mongodb:7.0' }) })),
      true,
      name,
    );
    t.equal(
      called(name, admissionReview({ object: statefulSet({ image: 'redis:7' }) })),
      false,
      `${name}: redis`,
    );
    const noImage = statefulSet();
    delete noImage.spec?.template.spec?.containers[0]?.image;
    t.equal(called(name, admissionReview({ object: noImage })), false, `${name}: a container without image`);
  }
});

t.test('scale requests reach the validating webhook only above one replica', async (t) => {
  t.equal(called('validate.sts-guard.io', scaleReview('mongodb', 3)), true, 'scale to 3');
  t.equal(called('validate.sts-guard.io', scaleReview('mongodb', 1)), false, 'scale to 1');
  t.equal(called('validate.sts-guard.io', scaleReview('mongodb', 0)), false, 'scale to 0 (replicas omitted)');
});

t.test(
  'the Services webhook is called only when a headless Service is deleted or stops being headless',
  async (t) => {
    const headless = service('mongodb-headless');
    const clusterIp = service('mongodb', 'grade-submission', '10.96.0.12');
    const review = (operation: 'UPDATE' | 'DELETE', oldObject: unknown, object?: unknown) =>
      admissionReview({ operation, oldObject, object, kind: serviceKind, resource: serviceResource });
    const name = 'services.validate.sts-guard.io';
    t.equal(called(name, review('DELETE', headless)), true, 'delete a headless Service');
    t.equal(called(name, review('DELETE', clusterIp)), false, 'delete a ClusterIP Service');
    const relabelled = { ...headless, metadata: { ...headless.metadata, labels: { team: 'grades' } } };
    t.equal(called(name, review('UPDATE', headless, relabelled)), false, 'relabel a headless Service');
    const external = { ...headless, spec: { type: 'ExternalName', externalName: 'db.example.com' } };
    t.equal(called(name, review('UPDATE', headless, external)), true, 'turn it into ExternalName');
  },
);

t.test(
  'the Services webhook is called when a Service that load-balances over pods is created or re-pointed',
  async (t) => {
    const name = 'services.validate.sts-guard.io';
    const review = (operation: 'CREATE' | 'UPDATE', object: unknown, oldObject?: unknown) =>
      admissionReview({ operation, object, oldObject, kind: serviceKind, resource: serviceResource });
    // A Service as `kubectl apply` sends it at CREATE: no clusterIP yet, so one will be allocated.
    const clusterIp = service('mongodb', 'grade-submission', '');
    delete clusterIp.spec?.clusterIP;
    t.equal(called(name, review('CREATE', clusterIp)), true, 'create a ClusterIP Service with a selector');
    t.equal(called(name, review('CREATE', service('mongodb-headless'))), false, 'create a headless Service');
    const seedOnly = {
      ...clusterIp,
      metadata: { ...clusterIp.metadata, annotations: { 'sts-guard.io/client-routing': 'seed-only' } },
    };
    t.equal(called(name, review('CREATE', seedOnly)), false, 'create one annotated seed-only');
    const noSelector = { ...clusterIp, spec: { ports: clusterIp.spec?.ports } };
    t.equal(called(name, review('CREATE', noSelector)), false, 'create one without a selector');
    const external = { ...clusterIp, spec: { type: 'ExternalName', externalName: 'db.example.com' } };
    t.equal(called(name, review('CREATE', external)), false, 'create an ExternalName Service');

    const live = service('mongodb', 'grade-submission', '10.96.0.12');
    const relabelled = { ...live, metadata: { ...live.metadata, labels: { team: 'grades' } } };
    t.equal(called(name, review('UPDATE', relabelled, live)), false, 'relabel it');
    const repointed = { ...live, spec: { ...live.spec, selector: { app: 'mongodb' } } };
    t.equal(called(name, review('UPDATE', repointed, live)), true, 'change its selector');
    const unannotated = { ...live };
    const annotated = { ...live, metadata: { ...live.metadata, annotations: seedOnly.metadata.annotations } };
    t.equal(called(name, review('UPDATE', unannotated, annotated)), true, 'drop the seed-only annotation');
  },
);
