import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1Container,
  V1Deployment,
  V1NetworkPolicy,
  V1Role,
  V1RoleBinding,
} from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import t from 'tap';
import { configSchema } from '../../src/config-schema.js';
import { repoRoot } from '../support/repo.js';
import { Rendered } from './render.js';

/**
 * deploy/audit as kustomize renders it: the audit's own Deployment, identity and RBAC, apart from
 * the webhook's (whose RBAC test/deploy/manifests.test.ts holds unchanged). The real API server
 * accepts it whole and the RBAC is enough in test/e2e/audit-reports.e2e.ts.
 */
const audit = await Rendered.of('deploy/audit');
const base = await Rendered.of('deploy/base');

t.test('built-in objects use only fields their Kubernetes API type has', async (t) => {
  for (const object of audit.objects) {
    const type = `V1${object.kind}`;
    const roundTripped = ObjectSerializer.serialize(ObjectSerializer.deserialize(object, type, ''), type, '');
    t.same(JSON.parse(JSON.stringify(roundTripped)), object, `${object.kind}/${object.metadata?.name}`);
  }
});

t.test('its own ServiceAccount: list and watch what it audits, write only its reports', async (t) => {
  const role = audit.one<V1ClusterRole>('ClusterRole', 'sts-guard-audit');
  t.same(role.rules, [
    { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['list', 'watch'] },
    { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
    {
      apiGroups: ['openreports.io'],
      resources: ['reports'],
      verbs: ['get', 'list', 'create', 'update', 'delete'],
    },
    {
      apiGroups: ['wgpolicyk8s.io'],
      resources: ['policyreports'],
      verbs: ['get', 'list', 'create', 'update', 'delete'],
    },
  ]);
  const binding = audit.one<V1ClusterRoleBinding>('ClusterRoleBinding', 'sts-guard-audit');
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'sts-guard-audit', namespace: 'sts-guard' }]);
  t.equal(binding.roleRef.name, 'sts-guard-audit');
  const lease = audit.one<V1Role>('Role', 'sts-guard-audit-lease');
  t.equal(lease.metadata?.namespace, 'sts-guard', 'the Lease only in its own namespace');
  t.same(lease.rules, [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      resourceNames: ['sts-guard-audit'],
      verbs: ['get', 'update'],
    },
  ]);
  t.same(audit.one<V1RoleBinding>('RoleBinding', 'sts-guard-audit-lease').subjects, binding.subjects);
  t.same(audit.all('Secret'), [], 'nothing secret');
  t.same(
    audit.all('ClusterRole').map((r) => r.metadata?.name),
    ['sts-guard-audit'],
    "the webhook's ClusterRole is not part of it",
  );
});

t.test('the Deployment: two replicas of the same image running the audit bundle', async (t) => {
  const deployment = audit.one<V1Deployment>('Deployment', 'sts-guard-audit');
  const webhook = base.one<V1Deployment>('Deployment', 'sts-guard');
  t.equal(deployment.spec?.replicas, 2, 'a standby for the Lease');
  const pod = deployment.spec?.template.spec;
  t.equal(pod?.serviceAccountName, 'sts-guard-audit');
  const container = pod?.containers[0] as V1Container;
  t.equal(container.image, webhook.spec?.template.spec?.containers[0]?.image, "the webhook's image");
  t.same(container.args, ['dist/bundle/audit/main.mjs']);
  t.ok(existsSync(join(repoRoot, 'dist/bundle/audit/main.mjs')), 'which `npm run build` writes');
  const env = container.env ?? [];
  for (const variable of env) {
    t.ok(
      Object.hasOwn(configSchema.properties, variable.name),
      `${variable.name} is a configuration variable`,
    );
  }
  const value = (name: string) => env.find((e) => e.name === name);
  t.same(
    value('POD_NAME')?.valueFrom,
    { fieldRef: { fieldPath: 'metadata.name' } },
    'the Lease holder is the pod',
  );
  t.equal(
    value('EXCEPTIONS_FILE')?.value,
    webhook.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'EXCEPTIONS_FILE')?.value,
    "the webhook's exception list",
  );
  t.same(pod?.volumes?.find((v) => v.name === 'exceptions')?.configMap, {
    name: 'sts-guard-exceptions',
    optional: true,
  });
  t.equal(container.readinessProbe?.httpGet?.path, '/readyz');
  t.equal(container.ports?.[0]?.containerPort, Number(value('AUDIT_PORT')?.value));
  t.match(container.securityContext, {
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    runAsNonRoot: true,
  });
});

t.test('the NetworkPolicy admits only the metrics port and lets out only the Kubernetes API', async (t) => {
  const policy = audit.one<V1NetworkPolicy>('NetworkPolicy', 'sts-guard-audit');
  t.same(policy.spec?.podSelector?.matchLabels, { 'app.kubernetes.io/name': 'sts-guard-audit' });
  t.same(policy.spec?.ingress, [{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
  t.same(policy.spec?.egress, [
    {
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 6443 },
      ],
    },
  ]);
});
