import type { V1ConfigMap, V1Container, V1EnvVar, V1StatefulSet } from '@kubernetes/client-node';
import fc from 'fast-check';
import t from 'tap';
import { parse, stringify } from 'yaml';
import {
  type ConfigMapLookup,
  detectDatabase,
  inspectServer,
  type ServiceLookup,
  validateStatefulSet,
} from '../../src/policy/index.js';
import { defaultSettings, statefulSet } from '../support/fixtures.js';
import { propertyHolds } from '../support/property.js';

/**
 * For any MongoDB StatefulSet whose replica-set name sts-guard detects, in any form it knows
 * (flags, `mongod` as the command, a shell wrapper, a config file in a ConfigMap, Bitnami's
 * environment): the same StatefulSet without the name is denied, and the fix printed in the
 * denial, applied as a user would, makes it pass.
 */

interface Case {
  form: string;
  /** The StatefulSet that names the set, and the same without the name. */
  named: V1StatefulSet;
  unnamed: V1StatefulSet;
  configMaps: { named: V1ConfigMap[]; unnamed: V1ConfigMap[] };
  name: string;
}

const headless: ServiceLookup = {
  outcome: 'found',
  service: { metadata: { name: 'mongodb-headless' }, spec: { clusterIP: 'None' } },
};

const setName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,15}$/);
const otherFlags = fc.subarray([
  ['--bind_ip_all'],
  ['--port', '27018'],
  ['--auth'],
  ['--wiredTigerCacheSizeGB', '1'],
  ['--quiet'],
]);
const replSetFlag = (name: string, glued: boolean) => (glued ? [`--replSet=${name}`] : ['--replSet', name]);

/** Inserts the flag group at a position among the others. */
const withFlag = (others: string[][], flag: string[], at: number) => {
  const groups = [...others];
  groups.splice(at % (groups.length + 1), 0, flag);
  return groups.flat();
};

const flagsCase = fc
  .record({ name: setName, others: otherFlags, at: fc.nat(), glued: fc.boolean(), direct: fc.boolean() })
  .map(({ name, others, at, glued, direct }): Case => {
    const make = (argv: string[]) =>
      direct
        ? statefulSet({ replicas: 3, command: ['mongod', ...argv] })
        : statefulSet({ replicas: 3, args: argv });
    return {
      form: direct ? 'mongod command' : 'args',
      named: make(withFlag(others, replSetFlag(name, glued), at)),
      unnamed: make(others.flat()),
      configMaps: { named: [], unnamed: [] },
      name,
    };
  });

const shellCase = fc
  .record({
    name: setName,
    others: otherFlags,
    at: fc.nat(),
    glued: fc.boolean(),
    shell: fc.constantFrom<string[]>(['/bin/sh', '-c'], ['bash', '-ec'], ['/bin/bash', '-e', '-c']),
    before: fc.subarray([
      'ulimit -n 64000',
      'echo "starting mongod"',
      'export GLIBC_TUNABLES=glibc.pthread.rseq=0',
      'set -x',
    ]),
    separator: fc.constantFrom('; ', '\n', ' && '),
    launcher: fc.constantFrom('exec ', '', 'exec numactl --interleave=all ', 'exec env LANG=C '),
    scriptInArgs: fc.boolean(),
  })
  .map(({ name, others, at, glued, shell, before, separator, launcher, scriptInArgs }): Case => {
    const make = (argv: string[]) => {
      const script = [...before, `${launcher}mongod ${argv.join(' ')}`.trimEnd()].join(separator);
      return scriptInArgs
        ? statefulSet({ replicas: 3, command: shell, args: [script] })
        : statefulSet({ replicas: 3, command: [...shell, script] });
    };
    return {
      form: 'shell',
      named: make(withFlag(others, replSetFlag(name, glued), at)),
      unnamed: make(others.flat()),
      configMaps: { named: [], unnamed: [] },
      name,
    };
  });

const configFileCase = fc
  .record({
    name: setName,
    flag: fc.constantFrom('--config', '-f', '--config='),
    port: fc.option(fc.integer({ min: 1024, max: 65535 }), { nil: undefined }),
    dbPath: fc.option(fc.constantFrom('/data/db', '/data/mongo', '/var/lib/mongodb'), { nil: undefined }),
    oplog: fc.option(fc.integer({ min: 990, max: 4096 }), { nil: undefined }),
    subPath: fc.boolean(),
  })
  .map(({ name, flag, port, dbPath, oplog, subPath }): Case => {
    const file = '/etc/mongod/mongod.conf';
    const config = (replSetName?: string) => {
      const replication = {
        ...(oplog ? { oplogSizeMB: oplog } : {}),
        ...(replSetName ? { replSetName } : {}),
      };
      return stringify({
        net: { bindIpAll: true, ...(port ? { port } : {}) },
        ...(dbPath ? { storage: { dbPath } } : {}),
        ...(Object.keys(replication).length > 0 ? { replication } : {}),
      });
    };
    const configMap = (text: string): V1ConfigMap => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'mongodb-config', namespace: 'grade-submission' },
      data: { 'mongod.conf': text },
    });
    const sts = statefulSet({
      replicas: 3,
      args: flag.endsWith('=') ? [`${flag}${file}`] : [flag, file],
      container: {
        volumeMounts: subPath
          ? [{ name: 'config', mountPath: file, subPath: 'mongod.conf' }]
          : [{ name: 'config', mountPath: '/etc/mongod' }],
      },
    });
    sts.spec!.template.spec!.volumes = [{ name: 'config', configMap: { name: 'mongodb-config' } }];
    return {
      form: 'config file',
      named: sts,
      unnamed: sts,
      configMaps: { named: [configMap(config(name))], unnamed: [configMap(config())] },
      name,
    };
  });

const bitnamiCase = fc
  .record({
    name: setName,
    mode: fc.constantFrom<V1EnvVar>(
      { name: 'MONGODB_REPLICA_SET_MODE', value: 'primary' },
      {
        name: 'MONGODB_REPLICA_SET_MODE',
        valueFrom: { configMapKeyRef: { name: 'mongo-env', key: 'mode' } },
      },
    ),
    extra: fc.subarray<V1EnvVar>([
      { name: 'ALLOW_EMPTY_PASSWORD', value: 'yes' },
      { name: 'MONGODB_ROOT_PASSWORD', valueFrom: { secretKeyRef: { name: 'mongodb', key: 'root' } } },
    ]),
    image: fc.constantFrom('bitnami/mongodb:7.0', 'docker.io/bitnami/mongodb:6.0.13-debian-12-r0'),
  })
  .map(({ name, mode, extra, image }): Case => {
    const make = (env: V1EnvVar[]) => statefulSet({ replicas: 3, image, container: { env } });
    return {
      form: 'bitnami environment',
      named: make([...extra, mode, { name: 'MONGODB_REPLICA_SET_NAME', value: name }]),
      unnamed: make(extra),
      configMaps: { named: [], unnamed: [] },
      name,
    };
  });

const lookups = (configMaps: V1ConfigMap[]) =>
  new Map(
    configMaps.map((c): [string, ConfigMapLookup] => [
      c.metadata?.name ?? '',
      { outcome: 'found', configMap: c },
    ]),
  );

/** Applies a printed fix as a user would: the container fields it shows, or the block it adds to the file. */
function applyFix(
  sts: V1StatefulSet,
  configMaps: V1ConfigMap[],
  fix: string,
): { sts: V1StatefulSet; configMaps: V1ConfigMap[] } {
  const fixed = structuredClone(sts);
  const container = fixed.spec?.template.spec?.containers[0] as V1Container;
  const file = fix.match(/^add this to mongod's config file \S+ \(key "([^"]+)" of ConfigMap "([^"]+)"\):\n/);
  if (file) {
    const [, key, name] = file;
    const block = parse(fix.slice(file[0].length)) as Record<string, Record<string, unknown>>;
    return {
      sts: fixed,
      configMaps: configMaps.map((c) => {
        if (c.metadata?.name !== name || !key) return c;
        const current = (parse(c.data?.[key] ?? '') ?? {}) as Record<string, Record<string, unknown>>;
        for (const [section, values] of Object.entries(block))
          current[section] = { ...current[section], ...values };
        return { ...c, data: { ...c.data, [key]: stringify(current) } };
      }),
    };
  }
  let applied = 0;
  for (const line of fix.split('\n')) {
    const field = line.match(/(?:^|: |set )(command|args|env): (\[.*\])$/);
    if (!field) continue;
    const [, name, value] = field;
    (container as unknown as Record<string, unknown>)[name as string] = JSON.parse(value as string);
    applied++;
  }
  if (applied === 0) throw new Error(`no field to apply in the fix:\n${fix}`);
  return { sts: fixed, configMaps };
}

t.test(
  'the fix printed for a StatefulSet without its replica-set name, applied, makes it pass',
  async (t) => {
    await propertyHolds(
      t,
      'every generated StatefulSet passed once its printed fix was applied',
      fc.property(fc.oneof(flagsCase, shellCase, configFileCase, bitnamiCase), (c) => {
        const settings = defaultSettings();
        const review = (object: V1StatefulSet) => ({
          operation: 'CREATE' as const,
          namespace: 'grade-submission',
          object,
        });

        const named = validateStatefulSet(review(c.named), settings, headless, {
          configMaps: lookups(c.configMaps.named),
        });
        if (!named.allowed) throw new Error(`${c.form}: the named form is denied:\n${named.message}`);
        const target = detectDatabase(c.named);
        const wiring =
          target &&
          inspectServer(c.named, target, 'grade-submission', 'cluster.local', lookups(c.configMaps.named))
            .replicaSet;
        if (wiring?.state !== 'member' || wiring.name !== c.name) {
          throw new Error(`${c.form}: detected ${JSON.stringify(wiring)}, not "${c.name}"`);
        }

        const unnamed = validateStatefulSet(review(c.unnamed), settings, headless, {
          configMaps: lookups(c.configMaps.unnamed),
        });
        const violation = unnamed.violations.find((v) => v.rule === 'replica-set');
        if (unnamed.allowed || !violation) throw new Error(`${c.form}: the unnamed form is not denied`);

        const fixed = applyFix(c.unnamed, c.configMaps.unnamed, violation.fix);
        const after = validateStatefulSet(review(fixed.sts), settings, headless, {
          configMaps: lookups(fixed.configMaps),
        });
        if (!after.allowed)
          throw new Error(`${c.form}: still denied after the fix\n${violation.fix}\n${after.message}`);
      }),
      300,
    );
  },
);
