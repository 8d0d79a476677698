import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1MutatingWebhook,
  V1Namespace,
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1Secret,
  V1Service,
  V1ServiceAccount,
  V1ValidatingWebhook,
} from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import t from 'tap';
import { podSelectorSelects, serviceSelectorSelects, webhookSelectorSelects } from '../support/selectors.js';
import { namespaceLabels, Rendered } from './render.js';

// Every way of registering sts-guard, rendered once with real kustomize.
const selfSigned = await Rendered.of('deploy/overlays/self-signed');
const certManager = await Rendered.of('deploy/overlays/cert-manager');
const webhookUrl = await Rendered.of('deploy/serverless/webhook-url');
const knative = await Rendered.of('deploy/serverless/knative');
const variants: Array<[string, Rendered]> = [
  ['overlays/self-signed', selfSigned],
  ['overlays/cert-manager', certManager],
  ['serverless/webhook-url', webhookUrl],
  ['serverless/knative', knative],
];

const NAMESPACE = 'sts-guard';
const IMAGE = 'ghcr.io/example/sts-guard:0.1.0';

function webhookNamed<W extends V1MutatingWebhook | V1ValidatingWebhook>(webhooks: W[], name: string): W {
  const webhook = webhooks.find((w) => w.name === name);
  if (!webhook) throw new Error(`no webhook ${name} among ${webhooks.map((w) => w.name).join(', ')}`);
  return webhook;
}

const conditionNames = (w: V1MutatingWebhook | V1ValidatingWebhook) =>
  (w.matchConditions ?? []).map((c) => c.name);

t.test('built-in objects use only fields their Kubernetes API type has', async (t) => {
  // kubectl validates fields strictly and refuses unknown ones. Reading each object into its
  // client-node model (generated from the Kubernetes OpenAPI) and writing it back drops any field
  // the API does not know, so a round trip that changes the object names a typo.
  const builtInGroups = new Set([
    'v1',
    'apps/v1',
    'policy/v1',
    'networking.k8s.io/v1',
    'rbac.authorization.k8s.io/v1',
    'admissionregistration.k8s.io/v1',
  ]);
  for (const [variant, rendered] of variants) {
    for (const object of rendered.objects) {
      if (!builtInGroups.has(object.apiVersion ?? '')) continue;
      const type = `V1${object.kind}`;
      const roundTripped = ObjectSerializer.serialize(
        ObjectSerializer.deserialize(object, type, ''),
        type,
        '',
      );
      t.same(
        JSON.parse(JSON.stringify(roundTripped)),
        object,
        `${variant}: ${object.kind}/${object.metadata?.name}`,
      );
    }
  }
});

t.test('the webhook configurations keep their contract in every variant', async (t) => {
  for (const [variant, rendered] of variants) {
    t.test(variant, async (t) => {
      const all = rendered.webhooks();
      t.same(
        all.map((w) => w.name),
        ['mutate.sts-guard.io', 'validate.sts-guard.io', 'services.validate.sts-guard.io'],
      );
      for (const w of all) {
        t.same(w.admissionReviewVersions, ['v1'], `${w.name}: AdmissionReview v1 only`);
        t.equal(w.sideEffects, 'None', `${w.name}: no side effects, so dry-run requests are sent too`);
        t.equal(w.timeoutSeconds, 5, `${w.name}: short timeout, above the 1.5 s look-up budget`);
        t.equal(w.matchPolicy, 'Equivalent', `${w.name}: also called for other versions of the resource`);
        t.ok((w.matchConditions ?? []).length > 0, `${w.name}: matchConditions cut needless calls`);
      }

      const mutate = webhookNamed(rendered.mutatingWebhooks(), 'mutate.sts-guard.io');
      t.equal(mutate.reinvocationPolicy, 'IfNeeded', 'mutation is re-run after later mutations');
      t.equal(mutate.failurePolicy, 'Fail', 'no MongoDB is created without its claim template');
      t.same(mutate.rules, [
        {
          apiGroups: ['apps'],
          apiVersions: ['v1'],
          resources: ['statefulsets'],
          operations: ['CREATE', 'UPDATE'],
          scope: 'Namespaced',
        },
      ]);

      const validate = webhookNamed(rendered.validatingWebhooks(), 'validate.sts-guard.io');
      t.equal(validate.failurePolicy, 'Fail', 'no unreplicated MongoDB is admitted while sts-guard is down');
      t.same(validate.rules, [
        {
          apiGroups: ['apps'],
          apiVersions: ['v1'],
          resources: ['statefulsets', 'statefulsets/scale'],
          operations: ['CREATE', 'UPDATE'],
          scope: 'Namespaced',
        },
      ]);

      const services = webhookNamed(rendered.validatingWebhooks(), 'services.validate.sts-guard.io');
      t.equal(services.failurePolicy, 'Ignore', 'an outage never blocks deleting headless Services');
      t.same(services.rules, [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          resources: ['services'],
          operations: ['CREATE', 'UPDATE', 'DELETE'],
          scope: 'Namespaced',
        },
      ]);
    });
  }
});

t.test('namespaceSelector skips kube-system, sts-guard itself and opted-out namespaces', async (t) => {
  const cases: Array<[string, Record<string, string>, boolean]> = [
    ['kube-system', namespaceLabels('kube-system'), false],
    ["sts-guard's own namespace", namespaceLabels(NAMESPACE), false],
    [
      'a namespace labelled sts-guard.io/exempt=true',
      namespaceLabels('legacy', { 'sts-guard.io/exempt': 'true' }),
      false,
    ],
    ['a team namespace', namespaceLabels('grade-submission'), true],
    ['exempt=false is not an opt-out', namespaceLabels('team-b', { 'sts-guard.io/exempt': 'false' }), true],
    ['default', namespaceLabels('default'), true],
  ];
  for (const [variant, rendered] of variants) {
    for (const w of rendered.webhooks()) {
      for (const [what, labels, reviewed] of cases) {
        t.equal(
          webhookSelectorSelects(w.namespaceSelector, labels),
          reviewed,
          `${variant} ${w.name}: ${what}`,
        );
      }
    }
  }
});

t.test('matchConditions never read a field they have not checked for', async (t) => {
  // The API server evaluates these on every matching request; an expression that errors counts as
  // a webhook failure (failurePolicy Fail: the request is refused). So each names the guards that
  // keep it from erroring on a Scale object, a DELETE (object null) and a CREATE (oldObject null).
  const w = selfSigned.webhooks();
  const mutate = webhookNamed(w, 'mutate.sts-guard.io');
  t.same(conditionNames(mutate), ['has-mongodb-container']);
  const mongo = mutate.matchConditions?.[0]?.expression ?? '';
  for (const guard of [
    'has(object.spec)',
    'has(object.spec.template)',
    'has(object.spec.template.spec)',
    'has(object.spec.template.spec.containers)',
    'has(c.image)',
    "c.image.contains('mongo')",
  ]) {
    t.ok(mongo.includes(guard), `mutate: ${guard}`);
  }

  const validate = webhookNamed(w, 'validate.sts-guard.io');
  t.same(conditionNames(validate), ['has-mongodb-container-or-is-scale', 'scale-above-one-replica']);
  const [isMongoOrScale, scaleAboveOne] = (validate.matchConditions ?? []).map((c) => c.expression);
  t.match(isMongoOrScale, "(has(request.subResource) && request.subResource == 'scale') ||");
  t.ok(
    isMongoOrScale?.includes(mongo.replace(/^has\(object\.spec\)/, '(has(object.spec)')),
    'same image test',
  );
  t.match(scaleAboveOne, "!(has(request.subResource) && request.subResource == 'scale') ||");
  t.match(scaleAboveOne, 'has(object.spec) && has(object.spec.replicas) && object.spec.replicas > 1');

  const services = webhookNamed(w, 'services.validate.sts-guard.io');
  t.same(conditionNames(services), ['protection-or-routing']);
  const [either] = (services.matchConditions ?? []).map((c) => c.expression);
  // Every field read is guarded: oldObject/object null checks, has() on each spec field, and
  // `in` before an annotation is indexed.
  for (const guarded of [
    "(request.operation == 'DELETE' && (oldObject == null || (has(oldObject.spec) && has(oldObject.spec.clusterIP) &&",
    'has(object.spec.selector) && size(object.spec.selector) > 0',
    "'sts-guard.io/client-routing' in object.metadata.annotations &&",
    '!has(oldObject.spec.selector) || oldObject.spec.selector != object.spec.selector',
  ]) {
    t.ok(either?.includes(guarded), guarded);
  }
});

t.test('in-cluster variants call the Service sts-guard on 443, which reaches the pods on 8443', async (t) => {
  for (const [variant, rendered] of [
    ['overlays/self-signed', selfSigned],
    ['overlays/cert-manager', certManager],
  ] as const) {
    const service = rendered.one<V1Service>('Service');
    const deployment = rendered.one<V1Deployment>('Deployment');
    const pod = deployment.spec?.template;
    const container = pod?.spec?.containers[0] as V1Container;
    t.equal(service.metadata?.namespace, NAMESPACE);
    t.ok(serviceSelectorSelects(service.spec?.selector, pod?.metadata?.labels), 'selects the pods');
    const port = service.spec?.ports?.find((p) => p.port === 443);
    t.equal(port?.name, 'https', `${variant}: Service port 443 named https`);
    const target = container.ports?.find(
      (p) => p.name === port?.targetPort || p.containerPort === port?.targetPort,
    );
    t.equal(target?.containerPort, 8443, `${variant}: 443 → container port 8443`);
    for (const w of rendered.webhooks()) {
      t.same(
        w.clientConfig.service,
        {
          name: 'sts-guard',
          namespace: NAMESPACE,
          port: 443,
          path: w.name.startsWith('mutate') ? '/mutate' : '/validate',
        },
        `${variant} ${w.name}`,
      );
      t.equal(w.clientConfig.url, undefined);
    }
  }
});

t.test(
  'the Deployment: two replicas on different nodes, probes, restricted security, resources',
  async (t) => {
    for (const [variant, rendered] of [
      ['overlays/self-signed', selfSigned],
      ['overlays/cert-manager', certManager],
    ] as const) {
      t.test(variant, async (t) => {
        const deployment = rendered.one<V1Deployment>('Deployment');
        const spec = deployment.spec;
        const pod = spec?.template.spec;
        const podLabels = spec?.template.metadata?.labels ?? {};
        const container = pod?.containers[0] as V1Container;
        t.equal(deployment.metadata?.namespace, NAMESPACE);
        t.ok((spec?.replicas ?? 1) >= 2, 'at least two replicas');
        t.equal(spec?.strategy?.rollingUpdate?.maxUnavailable, 0, 'a rollout never drops below two');
        t.equal(pod?.serviceAccountName, 'sts-guard');
        t.equal(container.image, IMAGE, 'the documented placeholder image');

        const byNode = pod?.topologySpreadConstraints?.find(
          (c) => c.topologyKey === 'kubernetes.io/hostname',
        );
        t.equal(byNode?.whenUnsatisfiable, 'DoNotSchedule', 'replicas never share a node');
        t.equal(byNode?.maxSkew, 1);
        t.ok(podSelectorSelects(byNode?.labelSelector, podLabels), 'the spread counts these pods');

        t.match(container.readinessProbe?.httpGet, { path: '/readyz', port: 'https', scheme: 'HTTPS' });
        t.match(container.livenessProbe?.httpGet, { path: '/healthz', port: 'https', scheme: 'HTTPS' });
        t.equal(container.lifecycle?.preStop?.sleep?.seconds, 5, 'serves while endpoints catch up');
        t.ok(
          (pod?.terminationGracePeriodSeconds ?? 30) >= 5 + 25,
          'grace period covers preStop and SHUTDOWN_TIMEOUT_MS',
        );

        // The "restricted" Pod Security Standard, field by field.
        t.equal(pod?.securityContext?.runAsNonRoot, true);
        t.not(pod?.securityContext?.runAsUser, 0);
        t.equal(pod?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
        const sc = container.securityContext;
        t.equal(sc?.allowPrivilegeEscalation, false);
        t.equal(sc?.readOnlyRootFilesystem, true);
        t.same(sc?.capabilities?.drop, ['ALL']);
        t.equal(sc?.capabilities?.add, undefined);
        t.not(sc?.privileged, true);
        t.equal(sc?.seccompProfile?.type, 'RuntimeDefault');
        const namespace = rendered.one<V1Namespace>('Namespace', NAMESPACE);
        t.equal(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');

        t.ok(container.resources?.requests?.cpu, 'cpu request');
        t.ok(container.resources?.requests?.memory, 'memory request');
        t.ok(container.resources?.limits?.memory, 'memory limit');

        // The serving certificate: Secret sts-guard-tls mounted where TLS_CERT_FILE/TLS_KEY_FILE point.
        const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
        const tlsVolume = pod?.volumes?.find((v) => v.secret?.secretName === 'sts-guard-tls');
        const mount = container.volumeMounts?.find((m) => m.name === tlsVolume?.name);
        t.equal(mount?.mountPath, '/etc/sts-guard/tls');
        t.equal(mount?.readOnly, true);
        t.equal(env.TLS_CERT_FILE, '/etc/sts-guard/tls/tls.crt');
        t.equal(env.TLS_KEY_FILE, '/etc/sts-guard/tls/tls.key');
        t.equal(env.PORT, '8443');
        t.equal(env.LOOKUP_TIMEOUT_MS, '1500');

        const pdb = rendered.one<V1PodDisruptionBudget>('PodDisruptionBudget');
        t.ok(podSelectorSelects(pdb.spec?.selector, podLabels), 'the PodDisruptionBudget covers the pods');
        t.equal(pdb.spec?.minAvailable, 1, 'a drain keeps one replica serving and can still evict the other');
        t.ok((spec?.replicas ?? 1) > Number(pdb.spec?.minAvailable), 'disruptions remain possible');
      });
    }
  },
);

t.test('the NetworkPolicy admits only HTTPS on 8443 and lets out only the Kubernetes API', async (t) => {
  const policy = selfSigned.one<V1NetworkPolicy>('NetworkPolicy');
  const podLabels = selfSigned.one<V1Deployment>('Deployment').spec?.template.metadata?.labels ?? {};
  t.ok(podSelectorSelects(policy.spec?.podSelector, podLabels));
  t.same(policy.spec?.policyTypes, ['Ingress', 'Egress']);
  t.same(policy.spec?.ingress, [{ ports: [{ protocol: 'TCP', port: 8443 }] }]);
  t.same(policy.spec?.egress, [
    {
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 6443 },
      ],
    },
  ]);
});

t.test(
  'RBAC: read Services and StatefulSets, list PersistentVolumeClaims, get ConfigMaps, nothing else, for the sts-guard ServiceAccount',
  async (t) => {
    for (const [variant, rendered] of variants) {
      const role = rendered.one<V1ClusterRole>('ClusterRole');
      t.same(
        role.rules,
        [
          { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['list'] },
          { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
        ],
        variant,
      );
      const binding = rendered.one<V1ClusterRoleBinding>('ClusterRoleBinding');
      t.same(binding.roleRef, {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'sts-guard',
      });
      t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'sts-guard', namespace: NAMESPACE }]);
      t.equal(rendered.one<V1ServiceAccount>('ServiceAccount').metadata?.namespace, NAMESPACE);
      t.same(rendered.all('Role'), [], `${variant}: no namespaced Roles`);
      t.same(rendered.all('RoleBinding'), [], `${variant}: no RoleBindings`);
      t.equal(rendered.all('ClusterRole').length, 1, `${variant}: one ClusterRole`);
    }
  },
);

t.test('overlays/self-signed renders on a fresh clone: no key, no Secret, no caBundle in git', async (t) => {
  t.same(selfSigned.all('Secret'), [], 'the Secret comes from certs/generate.sh output');
  for (const w of selfSigned.webhooks()) t.equal(w.clientConfig.caBundle, undefined, w.name);
});

t.test('overlays/cert-manager issues sts-guard-tls from a CA and injects that CA', async (t) => {
  type Certificate = KubernetesObject & {
    spec: {
      secretName: string;
      isCA?: boolean;
      dnsNames?: string[];
      issuerRef: { kind: string; name: string };
    };
  };
  type Issuer = KubernetesObject & { spec: { selfSigned?: object; ca?: { secretName: string } } };
  const certificates = certManager.all<Certificate>('Certificate');
  const issuers = certManager.all<Issuer>('Issuer');
  const serving = certManager.one<Certificate>('Certificate', 'sts-guard-tls');
  t.equal(serving.spec.secretName, 'sts-guard-tls', 'the Secret the Deployment mounts');
  t.ok(serving.spec.dnsNames?.includes('sts-guard.sts-guard.svc'), 'the name the API server connects to');

  // Serving certificate ← CA Issuer ← CA Certificate ← self-signed Issuer: renewing the serving
  // certificate keeps the CA, so the injected caBundle stays valid.
  const caIssuer = issuers.find((i) => i.metadata?.name === serving.spec.issuerRef.name);
  t.equal(serving.spec.issuerRef.kind, 'Issuer');
  const ca = certificates.find((c) => c.spec.secretName === caIssuer?.spec.ca?.secretName);
  t.equal(ca?.spec.isCA, true);
  const root = issuers.find((i) => i.metadata?.name === ca?.spec.issuerRef.name);
  t.ok(root?.spec.selfSigned, 'the CA is self-signed');
  for (const object of [...certificates, ...issuers]) t.equal(object.metadata?.namespace, NAMESPACE);

  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    const annotation = certManager.one(kind).metadata?.annotations?.['cert-manager.io/inject-ca-from'];
    t.equal(annotation, `${NAMESPACE}/${serving.metadata?.name}`, `${kind}: <namespace>/<Certificate>`);
  }
  t.same(certManager.all('Secret'), [], 'cert-manager writes the Secret');
});

t.test(
  'serverless/webhook-url registers the Lambda by clientConfig.url, with identity but no workload',
  async (t) => {
    for (const [variant, rendered, host] of [
      ['serverless/webhook-url', webhookUrl, 'your-url-id.lambda-url.eu-west-1.on.aws'],
      ['serverless/knative', knative, 'sts-guard.sts-guard.knative.example.com'],
    ] as const) {
      for (const w of rendered.webhooks()) {
        const path = w.name.startsWith('mutate') ? '/mutate' : '/validate';
        t.equal(w.clientConfig.url, `https://${host}${path}`, `${variant} ${w.name}`);
        t.equal(w.clientConfig.service, undefined, `${variant} ${w.name}: no Service reference`);
      }
      t.same(rendered.all('Deployment'), [], `${variant}: no Deployment`);
      t.same(
        rendered.all<V1ConfigMap>('ConfigMap'),
        [],
        `${variant}: the endpoint ConfigMap is build input only`,
      );
    }
    const token = webhookUrl.one<V1Secret>('Secret', 'sts-guard-lambda-token');
    t.equal(token.type, 'kubernetes.io/service-account-token');
    t.equal(token.metadata?.annotations?.['kubernetes.io/service-account.name'], 'sts-guard');
  },
);

t.test('serverless/knative scales to zero and looks Services up live', async (t) => {
  type KnativeService = KubernetesObject & {
    spec: {
      template: {
        metadata: { annotations: Record<string, string> };
        spec: { serviceAccountName: string; containers: V1Container[] };
      };
    };
  };
  const ksvc = knative.objects.find(
    (o) => o.apiVersion === 'serving.knative.dev/v1' && o.kind === 'Service',
  ) as KnativeService;
  t.ok(ksvc, 'a Knative Service');
  const template = ksvc.spec.template;
  t.equal(template.metadata.annotations['autoscaling.knative.dev/min-scale'], '0');
  t.equal(template.spec.serviceAccountName, 'sts-guard');
  const container = template.spec.containers[0] as V1Container;
  t.equal(container.image, IMAGE);
  t.same(container.args, ['dist/bundle/http.mjs'], 'plain HTTP behind Knative ingress');
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
  t.equal(env.SERVICE_CACHE, 'off');
  t.equal(env.PORT, undefined, 'Knative sets PORT itself');
  t.equal(container.securityContext?.readOnlyRootFilesystem, true);
  t.same(container.securityContext?.capabilities?.drop, ['ALL']);
});
