import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import type { AdmissionResponse } from '../../src/admission/types.js';
import {
  auditService,
  auditStatefulSet,
  heldDirectories,
  indexByNamespace,
} from '../../src/audit/evaluate.js';
import { checkStatefulSet, isStatefulSetManifest } from '../../src/cli/check.js';
import type { Manifest } from '../../src/cli/input.js';
import {
  inputConfigMapDirectory,
  inputServiceDirectory,
  isServiceManifest,
  namespaceOf,
} from '../../src/cli/services.js';
import type { ReviewContext } from '../../src/pipeline/ports.js';
import type { ExceptionList, Finding, PolicySettings } from '../../src/policy/index.js';
import { renderKustomization } from '../../src/render/kustomize.js';
import { buildApp } from '../../src/server/app.js';
import { admissionReview, defaultSettings, FIXED_NOW } from '../support/fixtures.js';

/**
 * One corpus through the webhook (its two HTTP routes, in the API server's order), through
 * `sts-guard check` and through the audit: the same verdict, denial message, warnings and patch
 * for every StatefulSet, the same findings for the audit of what was stored, and the same answer
 * for every Service as a Service CREATE, because all three run the one pipeline (src/pipeline/). The corpus is the ecosystem's own shapes:
 * test/fixtures/ (Bitnami chart, operators, config files, shell wrappers), the e2e scenarios and
 * the bundle's overlays as kustomize renders them.
 */
const root = join(import.meta.dirname, '../..');

function documents(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as Manifest)
    .filter((o) => o !== null);
}

async function corpus(): Promise<Array<{ name: string; objects: Manifest[] }>> {
  const units: Array<{ name: string; objects: Manifest[] }> = [];
  for (const file of readdirSync(join(root, 'test/fixtures')).filter((f) => f.endsWith('.yaml'))) {
    units.push({ name: `test/fixtures/${file}`, objects: documents(join(root, 'test/fixtures', file)) });
  }
  const scenarios = join(root, 'test/e2e/scenarios');
  for (const dir of readdirSync(scenarios).filter((d) => statSync(join(scenarios, d)).isDirectory())) {
    const files = readdirSync(join(scenarios, dir))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    units.push({
      name: `test/e2e/scenarios/${dir}`,
      objects: files.flatMap((f) => documents(join(scenarios, dir, f))),
    });
  }
  for (const overlay of ['dev', 'staging', 'prod']) {
    const yaml = await renderKustomization(join(root, 'kustomize/overlays', overlay));
    units.push({
      name: `kustomize/overlays/${overlay}`,
      objects: parseAllDocuments(yaml).map((d) => d.toJS() as Manifest),
    });
  }
  return units;
}

/** Settings under which the corpus is compared: the defaults, and every rule only warning. */
const variants: Array<{ name: string; settings: PolicySettings; exceptions?: ExceptionList }> = [
  { name: 'default settings', settings: defaultSettings() },
  {
    name: 'rules in warn mode, look-up failures warn',
    settings: {
      ...defaultSettings(),
      rules: {
        'replica-set': 'warn',
        'headless-service': 'warn',
        'service-protection': 'warn',
        'client-routing': 'enforce',
      },
      lookupFailureMode: 'warn',
    },
  },
  {
    name: 'an exception waives headless-service in grade-submission',
    settings: defaultSettings(),
    exceptions: {
      exceptions: [
        {
          name: 'migration',
          reason: 'TICKET-1',
          rules: ['headless-service'],
          match: { namespaces: ['grade-submission'] },
        },
      ],
    },
  },
];

const STATEFUL_SET = {
  kind: { group: 'apps', version: 'v1', kind: 'StatefulSet' },
  resource: { group: 'apps', version: 'v1', resource: 'statefulsets' },
};
const SERVICE = {
  kind: { group: '', version: 'v1', kind: 'Service' },
  resource: { group: '', version: 'v1', resource: 'services' },
};

const patchOf = (response: AdmissionResponse) =>
  response.patch
    ? (JSON.parse(Buffer.from(response.patch, 'base64').toString()) as jsonpatch.Operation[])
    : [];

t.test(
  'the webhook, `sts-guard check` and the audit give the same answer for every object of the corpus',
  async (t) => {
    const units = await corpus();
    let compared = 0;
    let audits = 0;
    const seen = { denied: 0, warned: 0, patched: 0, routing: 0, serviceFindings: 0 };
    for (const variant of variants) {
      for (const unit of units) {
        const services = inputServiceDirectory(unit.objects, 'default');
        const configMaps = inputConfigMapDirectory(unit.objects, 'default');
        const exceptions = variant.exceptions;
        // The StatefulSets as the API server stores them (after the mutating webhook), filled in
        // below: what a Service review lists, and what the audit reads.
        const storedStatefulSets: V1StatefulSet[] = [];
        const statefulSets = heldDirectories(
          {
            get: (namespace, name) => indexByNamespace(storedStatefulSets).get(namespace, name),
            list: (namespace) => indexByNamespace(storedStatefulSets).list(namespace),
          },
          indexByNamespace([]),
        ).statefulSets;
        const app = await buildApp({
          settings: variant.settings,
          services,
          statefulSets,
          configMaps,
          claims: { list: async () => ({ outcome: 'found', claims: [] }) },
          exceptions: exceptions ? { current: () => exceptions } : undefined,
          clock: () => FIXED_NOW * 1000,
          bodyLimitBytes: 10 * 1024 * 1024,
          logger: { level: 'silent' },
        });
        const answer = async (path: string, object: unknown, namespace: string, kind = STATEFUL_SET) => {
          const reply = await app.inject({
            method: 'POST',
            url: path,
            payload: admissionReview({ object, namespace, ...kind }),
          });
          t.equal(reply.statusCode, 200, `${path} answers`);
          return (reply.json() as { response: AdmissionResponse }).response;
        };
        const validated: Array<{
          what: string;
          namespace: string;
          stored: V1StatefulSet;
          validate: AdmissionResponse;
          findings: Finding[];
        }> = [];
        for (const object of unit.objects.filter(isStatefulSetManifest)) {
          const statefulSet = object as V1StatefulSet;
          const namespace = namespaceOf(object, 'default');
          const what = `${variant.name}: ${unit.name} ${statefulSet.metadata?.name}`;
          const mutate = await answer('/mutate', statefulSet, namespace);
          const patch = patchOf(mutate);
          const stored = jsonpatch.applyPatch(structuredClone(statefulSet), patch, true, false).newDocument;
          const validate = mutate.allowed ? await answer('/validate', stored, namespace) : mutate;
          const cli = await checkStatefulSet(statefulSet, namespace, {
            settings: variant.settings,
            services,
            configMaps,
            exceptions,
            now: FIXED_NOW,
          });
          t.equal(cli.allowed, validate.allowed, `${what}: same verdict`);
          t.equal(cli.message, validate.status?.message ?? '', `${what}: same denial message`);
          t.same(cli.patch, patch, `${what}: same patch`);
          t.same(cli.mutated, stored, `${what}: same stored object`);
          const webhookWarnings = [
            ...(mutate.warnings ?? []),
            ...(mutate === validate ? [] : (validate.warnings ?? [])),
          ];
          t.same(cli.warnings, webhookWarnings, `${what}: same warnings, in kubectl's order`);
          storedStatefulSets.push(stored);
          validated.push({ what, namespace, stored, validate, findings: cli.findings });
          compared++;
          if (!cli.allowed) seen.denied++;
          if (cli.warnings.length > 0) seen.warned++;
          if (cli.patch.length > 0) seen.patched++;
          if (cli.warnings.some((w) => w.includes('[client-routing]'))) seen.routing++;
        }

        // The audit judges each StatefulSet as it is stored, from what it holds of the cluster,
        // and must find exactly what the validating webhook found at its CREATE.
        const audit: ReviewContext = {
          settings: variant.settings,
          services,
          statefulSets,
          configMaps,
          exceptions: exceptions ? { current: () => exceptions } : undefined,
        };
        for (const { what, namespace, stored, validate, findings } of validated) {
          const audited = await auditStatefulSet(
            { ...stored, metadata: { ...stored.metadata, namespace } },
            audit,
          );
          t.same(
            audited.decision.findings,
            findings,
            `${what}: the audit finds what the webhook and check found`,
          );
          t.equal(
            audited.decision.allowed,
            validate.allowed,
            `${what}: the audit's verdict is the webhook's`,
          );
          t.equal(
            audited.decision.message,
            validate.status?.message ?? '',
            `${what}: and its denial message`,
          );
          if (validate.allowed) {
            t.same(
              audited.decision.warnings,
              validate.warnings ?? [],
              `${what}: and the validating webhook's warnings`,
            );
          }
          audits++;
        }
        // Each Service as a Service CREATE, the webhook's /validate against the audit.
        for (const object of unit.objects.filter(isServiceManifest)) {
          const service = object as V1Service;
          const namespace = namespaceOf(object, 'default');
          const what = `${variant.name}: ${unit.name} Service ${service.metadata?.name}`;
          const webhook = await answer('/validate', service, namespace, SERVICE);
          const audited = await auditService(
            { ...service, metadata: { ...service.metadata, namespace } },
            audit,
          );
          t.equal(audited.decision.allowed, webhook.allowed, `${what}: same verdict`);
          t.equal(audited.decision.message, webhook.status?.message ?? '', `${what}: same denial message`);
          t.same(audited.decision.warnings, webhook.warnings ?? [], `${what}: same warnings`);
          t.same(
            audited.decision.findings.filter((f) => f.outcome === 'warn').map((f) => f.warning),
            webhook.warnings ?? [],
            `${what}: each warn finding is one of the webhook's warnings`,
          );
          if (audited.decision.findings.length > 0) seen.serviceFindings++;
          audits++;
        }
        await app.close();
      }
    }
    // 7 fixtures + 5 scenarios + 3 overlays, in 3 variants.
    t.ok(compared >= 3 * 15, `${compared} StatefulSets compared`);
    t.ok(audits > compared, `${audits} StatefulSets and Services audited`);
    // The corpus exercises every kind of answer, or the comparison proves little.
    for (const [kind, count] of Object.entries(seen)) t.ok(count > 0, `${count} answers ${kind}`);
  },
);
