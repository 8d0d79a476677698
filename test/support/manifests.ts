import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { ConfigMapLookup } from '../../src/policy/index.js';

export const fixturesDir = join(import.meta.dirname, '../fixtures');

export interface Fixture {
  path: string;
  statefulSet: V1StatefulSet;
  services: V1Service[];
  configMaps: V1ConfigMap[];
}

/** A manifest of test/fixtures/ (each cites the chart or operator code it was taken from). */
export function fixture(name: string): Fixture {
  const path = join(fixturesDir, name);
  const objects = parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS()) as Array<{
    kind: string;
  }>;
  const statefulSet = objects.find((o) => o.kind === 'StatefulSet') as V1StatefulSet | undefined;
  if (!statefulSet) throw new Error(`${name} has no StatefulSet`);
  return {
    path,
    statefulSet,
    services: objects.filter((o) => o.kind === 'Service') as V1Service[],
    configMaps: objects.filter((o) => o.kind === 'ConfigMap') as V1ConfigMap[],
  };
}

/** The ConfigMaps of a fixture as the edge hands them to the policy. */
export const configMapsOf = (f: Pick<Fixture, 'configMaps'>): Map<string, ConfigMapLookup> =>
  new Map(f.configMaps.map((c) => [c.metadata?.name ?? '', { outcome: 'found', configMap: c }]));
