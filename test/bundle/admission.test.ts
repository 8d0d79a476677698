import type { V1Container, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import t from 'tap';
import {
  detectDatabase,
  headlessServiceToLookUp,
  INJECTED_ANNOTATION,
  mutateStatefulSet,
  type ServiceLookup,
  type StatefulSetReview,
  validateStatefulSet,
} from '../../src/policy/index.js';
import { defaultSettings, newStatefulSetLookups } from '../support/fixtures.js';
import { applied } from '../support/json-patch.js';
import { type RenderedObject, render } from '../support/kustomize.js';
import { OVERLAYS, type Overlay, ofKind } from './manifests.js';

// What the API server does with each rendered StatefulSet, in its order: mutating admission
// (sts-guard's JSON Patch applied), then validating admission of the mutated object, with the
// headless-Service look-up answered from the Services of the same render.
const settings = defaultSettings();

const rendered = new Map<Overlay, RenderedObject[]>();
for (const overlay of OVERLAYS) rendered.set(overlay, await render(`kustomize/overlays/${overlay}`));

function lookUpInRender(objects: RenderedObject[], namespace: string, name: string): ServiceLookup {
  const service = ofKind<V1Service>(objects, 'Service').find(
    (s) => s.metadata.name === name && s.metadata.namespace === namespace,
  );
  return service ? { outcome: 'found', service } : { outcome: 'not-found' };
}

function review(object: V1StatefulSet, oldObject?: V1StatefulSet): StatefulSetReview {
  return {
    operation: oldObject ? 'UPDATE' : 'CREATE',
    namespace: object.metadata?.namespace ?? '',
    object,
    ...(oldObject ? { oldObject } : {}),
  };
}

function admit(objects: RenderedObject[], r: StatefulSetReview) {
  const serviceName = headlessServiceToLookUp(r, settings);
  const lookup = serviceName ? lookUpInRender(objects, r.namespace, serviceName) : undefined;
  return { serviceName, decision: validateStatefulSet(r, settings, lookup) };
}

const mongodbContainer = (sts: V1StatefulSet): V1Container => {
  const target = detectDatabase(sts);
  if (!target) throw new Error('not recognised as a database');
  return target.container;
};

for (const overlay of OVERLAYS) {
  const objects = rendered.get(overlay)!;
  const statefulSets = ofKind<V1StatefulSet>(objects, 'StatefulSet');

  t.test(`${overlay}: every StatefulSet is a MongoDB that sts-guard admits as rendered`, async (t) => {
    t.ok(statefulSets.length > 0);
    for (const sts of statefulSets) {
      t.ok(detectDatabase(sts), `${sts.metadata.name} is recognised as MongoDB, so the policy applies`);
      const { serviceName, decision } = admit(objects, review(sts));
      // One member needs no peers; with three, the headless-Service rule looks the Service up.
      t.equal(serviceName, (sts.spec?.replicas ?? 1) > 1 ? 'mongodb-headless' : undefined);
      t.same(decision.violations, []);
      t.same(decision.warnings, [], 'no soft findings either (odd member count, Retain)');
      t.equal(decision.allowed, true);
    }
  });

  t.test(`${overlay}: after sts-guard's mutation each StatefulSet is a complete replica set`, async (t) => {
    for (const sts of statefulSets) {
      const mutation = mutateStatefulSet(review(sts), settings, newStatefulSetLookups());
      t.same(mutation.warnings, []);
      const mutated = applied(sts, mutation.patch);
      const target = detectDatabase(mutated)!;
      const container = mongodbContainer(mutated);

      const postStart = container.lifecycle?.postStart;
      t.ok(postStart && target.engine.isBootstrapHook(postStart), 'the bootstrap postStart hook');
      const script = postStart?.exec?.command?.[2] ?? '';
      t.match(script, "RS='rs0'");
      t.match(script, `SERVICE='mongodb-headless.${sts.metadata.namespace}.svc.cluster.local'`);
      t.match(script, 'PORT=27017');

      const dataMount = container.volumeMounts?.find((m) => m.mountPath === '/data/db');
      const claim = mutated.spec?.volumeClaimTemplates?.find((c) => c.metadata?.name === dataMount?.name);
      t.ok(claim, 'a volumeClaimTemplate mounted at /data/db');
      t.same(claim?.spec?.accessModes, ['ReadWriteOnce']);

      if (overlay === 'prod') {
        // prod mounts its own 20Gi claim, which sts-guard leaves exactly as written.
        t.same(mutation.injected, ['bootstrap-hook']);
        t.same(mutated.spec?.volumeClaimTemplates, sts.spec?.volumeClaimTemplates);
      } else {
        t.same(sts.spec?.volumeClaimTemplates, undefined, 'the team wrote no claim template');
        t.same(mutation.injected, ['bootstrap-hook', 'storage']);
        t.equal(claim?.spec?.resources?.requests?.storage, settings.storage.size);
      }
      t.equal(mutated.metadata?.annotations?.[INJECTED_ANNOTATION], mutation.injected.join(','));
      t.equal(
        mutated.metadata?.annotations?.['argocd.argoproj.io/sync-options'],
        'Prune=false,Delete=false',
        "the bundle's own annotations survive",
      );

      const { decision } = admit(objects, review(mutated));
      t.equal(decision.allowed, true, 'the mutated object passes validation');
      t.same(decision.warnings, []);
    }
  });

  t.test(`${overlay}: mutating the mutated StatefulSet again changes nothing (no drift)`, async (t) => {
    for (const sts of statefulSets) {
      const mutated = applied(sts, mutateStatefulSet(review(sts), settings, newStatefulSetLookups()).patch);
      t.same(
        mutateStatefulSet(review(mutated), settings, newStatefulSetLookups()).patch,
        [],
        'CREATE of the mutated object',
      );
      t.same(
        mutateStatefulSet(review(mutated, mutated), settings, newStatefulSetLookups()).patch,
        [],
        'a sync that changes nothing',
      );
    }
  });

  t.test(
    `${overlay}: a server-side apply of the rendered manifest over the live object rolls nothing`,
    async (t) => {
      for (const sts of statefulSets) {
        const live = applied(sts, mutateStatefulSet(review(sts), settings, newStatefulSetLookups()).patch);
        // Argo CD applies the manifest as rendered; server-side apply drops the fields it does not
        // carry, and sts-guard puts back the identical hook and claim template, so the pod template
        // is unchanged (no rollout) and the immutable claim templates pass.
        const update = mutateStatefulSet(review(sts, live), settings, newStatefulSetLookups());
        t.strictSame(applied(sts, update.patch), live);
        t.equal(admit(objects, review(applied(sts, update.patch), live)).decision.allowed, true);
      }
    },
  );
}
