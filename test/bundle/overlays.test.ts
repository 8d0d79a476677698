import type {
  V1Container,
  V1Deployment,
  V1PodDisruptionBudget,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import t from 'tap';
import { defaultSettings } from '../support/fixtures.js';
import { type RenderedObject, render } from '../support/kustomize.js';
import { podSelectorSelects } from '../support/selectors.js';
import {
  backends,
  named,
  OVERLAYS,
  type Overlay,
  ofKind,
  podTemplate,
  quantity,
  resolveTargetPort,
  STACK_NAMESPACE,
  workloads,
} from './manifests.js';

const rendered = new Map<Overlay, RenderedObject[]>();
for (const overlay of OVERLAYS) rendered.set(overlay, await render(`kustomize/overlays/${overlay}`));
const objectsOf = (overlay: Overlay) => rendered.get(overlay)!;

const containerOf = (workload: V1Deployment | V1StatefulSet, name: string): V1Container => {
  const container = workload.spec?.template?.spec?.containers.find((c) => c.name === name);
  if (!container) throw new Error(`no container "${name}"`);
  return container;
};
const envOf = (container: V1Container, name: string) => container.env?.find((e) => e.name === name)?.value;

for (const overlay of OVERLAYS) {
  t.test(`${overlay}: renders into well-formed objects, all in namespace ${STACK_NAMESPACE}`, async (t) => {
    const objects = objectsOf(overlay);
    t.same(
      [...new Set(objects.map((o) => o.kind))].sort(),
      overlay === 'prod'
        ? ['Deployment', 'PodDisruptionBudget', 'Service', 'StatefulSet']
        : ['Deployment', 'Service', 'StatefulSet'],
    );
    for (const o of objects) {
      t.equal(o.metadata.namespace, STACK_NAMESPACE, `${o.kind}/${o.metadata.name} namespace`);
      t.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'grade-submission', `${o.kind} part-of`);
      t.equal(o.metadata.labels?.['sts-guard.io/exempt'], undefined, 'nothing opts out of sts-guard');
    }
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    t.same(ids, [...new Set(ids)], 'no two objects share a kind and name');
    // The namespace comes from Argo CD's CreateNamespace, so no prune can ever delete it (and the PVCs).
    t.equal(ofKind(objects, 'Namespace').length, 0);
  });

  t.test(`${overlay}: every selector matches the pods of a workload in the same render`, async (t) => {
    const objects = objectsOf(overlay);
    for (const w of workloads(objects)) {
      t.ok(
        podSelectorSelects(w.spec?.selector, podTemplate(w).metadata?.labels),
        `${w.kind}/${w.metadata.name} selects its own pods`,
      );
    }
    for (const service of ofKind<V1Service>(objects, 'Service')) {
      const matched = backends(service, objects);
      t.equal(matched.length, 1, `Service/${service.metadata.name} selects the pods of exactly one workload`);
      for (const port of service.spec?.ports ?? []) {
        t.ok(
          resolveTargetPort(podTemplate(matched[0]!), port.targetPort, port.port),
          `Service/${service.metadata.name} port ${port.name} reaches a container port`,
        );
      }
    }
    for (const pdb of ofKind<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget')) {
      t.ok(
        workloads(objects).some((w) =>
          podSelectorSelects(pdb.spec?.selector, podTemplate(w).metadata?.labels),
        ),
        `PodDisruptionBudget/${pdb.metadata.name} selects the pods of a workload`,
      );
    }
  });

  t.test(
    `${overlay}: the API's MONGODB_HOST lists every replica-set member by its stable DNS name`,
    async (t) => {
      const objects = objectsOf(overlay);
      const api = named<V1Deployment>(objects, 'Deployment', 'grade-submission-api');
      const container = containerOf(api, 'grade-submission-api');
      const hosts = (envOf(container, 'MONGODB_HOST') ?? '').split(',');
      const port = Number(envOf(container, 'MONGODB_PORT'));

      const members = new Set<string>();
      for (const host of hosts) {
        // <statefulset>-<ordinal>.<headless service>: a member's own DNS record, resolvable from the namespace.
        const match = /^([a-z0-9-]+)-([0-9]+)\.([a-z0-9-]+)$/.exec(host);
        t.ok(match, `"${host}" is a member address`);
        if (!match) continue;
        const [, stsName, ordinal, serviceName] = match;
        const sts = named<V1StatefulSet>(objects, 'StatefulSet', stsName!);
        const headless = named<V1Service>(objects, 'Service', serviceName!);
        t.equal(sts.spec?.serviceName, serviceName, `${host}: the StatefulSet's governing Service`);
        t.equal(headless.spec?.clusterIP, 'None', `${host}: resolves through a headless Service`);
        t.ok(Number(ordinal) < (sts.spec?.replicas ?? 1), `${host}: ordinal exists`);
        const servicePort = headless.spec?.ports?.find((p) => p.port === port);
        t.ok(servicePort, `${host}: the headless Service publishes MONGODB_PORT ${port}`);
        t.equal(
          resolveTargetPort(podTemplate(sts), servicePort?.targetPort, port),
          port,
          'members listen on MONGODB_PORT itself (pod DNS names bypass Service port mapping)',
        );
        members.add(`${stsName}-${ordinal}`);
      }
      const mongodb = named<V1StatefulSet>(objects, 'StatefulSet', 'mongodb');
      t.equal(members.size, mongodb.spec?.replicas, 'every member is a seed, each once');
      t.equal(hosts.length, members.size);
    },
  );

  t.test(`${overlay}: MongoDB has a headless Service for members and a client Service`, async (t) => {
    const objects = objectsOf(overlay);
    const mongodb = named<V1StatefulSet>(objects, 'StatefulSet', 'mongodb');
    const headless = named<V1Service>(objects, 'Service', 'mongodb-headless');
    t.equal(mongodb.spec?.serviceName, 'mongodb-headless');
    t.equal(headless.spec?.clusterIP, 'None');
    t.equal(
      headless.spec?.publishNotReadyAddresses,
      true,
      'members resolve each other before they are Ready',
    );
    const client = named<V1Service>(objects, 'Service', 'mongodb');
    t.equal(client.spec?.type, 'ClusterIP');
    t.same(
      backends(client, objects).map((w) => w.metadata.name),
      ['mongodb'],
    );
    t.same(
      client.spec?.ports?.map((p) => resolveTargetPort(podTemplate(mongodb), p.targetPort, p.port)),
      [27017],
    );
    const container = containerOf(mongodb, 'mongodb');
    t.equal(container.image, 'mongo:4.4');
    t.same(container.args, ['--replSet', 'rs0', '--bind_ip_all']);
    // Ready only as PRIMARY or SECONDARY, so the client Service never routes to a member that is not serving.
    t.match(container.readinessProbe?.exec?.command?.join(' '), /ismaster \|\| h\.secondary/);
  });

  t.test(
    `${overlay}: the portal is published on NodePort 32000 and finds the API by its Service`,
    async (t) => {
      const objects = objectsOf(overlay);
      const portal = named<V1Service>(objects, 'Service', 'grade-submission-portal');
      t.equal(portal.spec?.type, 'NodePort');
      const [port] = portal.spec?.ports ?? [];
      t.equal(port?.nodePort, 32000);
      t.equal(port?.port, 5001);
      const [portalPods] = backends(portal, objects);
      t.equal(portalPods?.metadata.name, 'grade-submission-portal');
      t.equal(resolveTargetPort(podTemplate(portalPods!), port?.targetPort, port?.port ?? 0), 5001);

      const portalDeployment = named<V1Deployment>(objects, 'Deployment', 'grade-submission-portal');
      const apiHost = envOf(containerOf(portalDeployment, 'grade-submission-portal'), 'GRADE_SERVICE_HOST');
      const apiService = named<V1Service>(objects, 'Service', apiHost ?? '(unset)');
      // The portal calls http://$GRADE_SERVICE_HOST:3000.
      const apiPort = apiService.spec?.ports?.find((p) => p.port === 3000);
      t.ok(apiPort, 'the API Service listens on 3000');
      const [apiPods] = backends(apiService, objects);
      t.equal(apiPods?.metadata.name, 'grade-submission-api');
      t.equal(resolveTargetPort(podTemplate(apiPods!), apiPort?.targetPort, 3000), 3000);
      t.equal(
        containerOf(apiPods!, 'grade-submission-api').image,
        'rslim087/kubernetes-course-grade-submission-api:stateless-v2',
      );
    },
  );

  t.test(`${overlay}: every container has a readiness probe, requests and a memory limit`, async (t) => {
    for (const w of workloads(objectsOf(overlay))) {
      for (const c of podTemplate(w).spec?.containers ?? []) {
        const where = `${w.metadata.name}/${c.name}`;
        t.ok(c.readinessProbe, `${where} readiness probe`);
        t.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${where} requests`);
        t.ok(c.resources?.limits?.memory, `${where} memory limit`);
      }
    }
  });

  t.test(`${overlay}: a sync never deletes database volumes or member identity`, async (t) => {
    const objects = objectsOf(overlay);
    const mongodb = named<V1StatefulSet>(objects, 'StatefulSet', 'mongodb');
    t.same(mongodb.spec?.persistentVolumeClaimRetentionPolicy, {
      whenDeleted: 'Retain',
      whenScaled: 'Retain',
    });
    for (const o of [mongodb, named<V1Service>(objects, 'Service', 'mongodb-headless')]) {
      t.equal(
        o.metadata.annotations?.['argocd.argoproj.io/sync-options'],
        'Prune=false,Delete=false',
        `${o.kind}/${o.metadata.name} is never pruned or deleted by Argo CD`,
      );
    }
    // sts-guard looks the headless Service up when it admits the StatefulSet, so it goes in an earlier wave.
    const wave = (o: RenderedObject) => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
    t.ok(wave(named(objects, 'Service', 'mongodb-headless')) < wave(mongodb));
  });
}

t.test('dev runs one MongoDB member (a replica set of one); staging and prod run three', async (t) => {
  const replicas = (overlay: Overlay) =>
    named<V1StatefulSet>(objectsOf(overlay), 'StatefulSet', 'mongodb').spec?.replicas;
  t.equal(replicas('dev'), 1);
  t.equal(replicas('staging'), 3);
  t.equal(replicas('prod'), 3);
  for (const overlay of OVERLAYS) {
    const mongodb = named<V1StatefulSet>(objectsOf(overlay), 'StatefulSet', 'mongodb');
    t.same(containerOf(mongodb, 'mongodb').args, ['--replSet', 'rs0', '--bind_ip_all'], `${overlay} replSet`);
  }
});

t.test('prod keeps members on separate nodes and a majority through voluntary disruptions', async (t) => {
  const objects = objectsOf('prod');
  const mongodb = named<V1StatefulSet>(objects, 'StatefulSet', 'mongodb');
  const podLabels = podTemplate(mongodb).metadata?.labels;
  const required =
    mongodb.spec?.template.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ??
    [];
  t.ok(
    required.some(
      (term) =>
        term.topologyKey === 'kubernetes.io/hostname' && podSelectorSelects(term.labelSelector, podLabels),
    ),
    'no two members on one node',
  );
  const pdb = ofKind<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').find((p) =>
    podSelectorSelects(p.spec?.selector, podLabels),
  );
  t.ok(pdb, 'a PodDisruptionBudget covers the members');
  const replicas = mongodb.spec?.replicas ?? 1;
  const maxUnavailable = Number(pdb?.spec?.maxUnavailable);
  t.ok(
    replicas - maxUnavailable > replicas / 2,
    `${replicas - maxUnavailable} of ${replicas} remain a majority`,
  );

  for (const overlay of ['dev', 'staging'] as const) {
    t.equal(
      named<V1StatefulSet>(objectsOf(overlay), 'StatefulSet', 'mongodb').spec?.template.spec?.affinity,
      undefined,
      `${overlay} schedules freely (a single-node cluster must work)`,
    );
    t.equal(ofKind(objectsOf(overlay), 'PodDisruptionBudget').length, 0);
  }
});

t.test('prod has larger volumes and more CPU and memory than staging', async (t) => {
  const prod = named<V1StatefulSet>(objectsOf('prod'), 'StatefulSet', 'mongodb');
  const staging = named<V1StatefulSet>(objectsOf('staging'), 'StatefulSet', 'mongodb');
  // staging's claim is the one sts-guard injects, sized by its STORAGE_SIZE (default 1Gi).
  t.equal(staging.spec?.volumeClaimTemplates, undefined);
  const prodClaim = prod.spec?.volumeClaimTemplates?.find((c) => c.metadata?.name === 'mongodb-data');
  t.ok(
    quantity(prodClaim?.spec?.resources?.requests?.storage) > quantity(defaultSettings().storage.size),
    `prod volume ${prodClaim?.spec?.resources?.requests?.storage} is larger than the injected default`,
  );
  const resources = (sts: V1StatefulSet) => containerOf(sts, 'mongodb').resources;
  for (const field of ['cpu', 'memory'] as const) {
    t.ok(
      quantity(resources(prod)?.requests?.[field]) > quantity(resources(staging)?.requests?.[field]),
      `MongoDB ${field} request`,
    );
  }
  t.ok(
    quantity(resources(prod)?.limits?.memory) > quantity(resources(staging)?.limits?.memory),
    'MongoDB memory limit',
  );

  const api = (overlay: Overlay) =>
    named<V1Deployment>(objectsOf(overlay), 'Deployment', 'grade-submission-api');
  t.ok(
    quantity(containerOf(api('prod'), 'grade-submission-api').resources?.limits?.memory) >
      quantity(containerOf(api('staging'), 'grade-submission-api').resources?.limits?.memory),
    'API memory limit',
  );
  t.ok((api('prod').spec?.replicas ?? 1) > 1, 'more than one API replica');
});
