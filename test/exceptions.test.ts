import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { watchExceptionList } from '../src/exceptions/source.js';

const log = pino({ level: 'silent' });

t.test(
  'a missing exception file (the optional ConfigMap is absent) is no exceptions, and healthy',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sts-guard-exceptions-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const source = watchExceptionList(join(dir, 'exceptions.yaml'), log);
    t.teardown(() => source.close());
    await source.ready;
    t.same(source.status(), { count: 0, failures: 0, healthy: true });
  },
);

t.test('a list that is bad at start leaves none in force, counted; fixing it loads it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sts-guard-exceptions-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'exceptions.yaml');
  await writeFile(file, 'kind: ExceptionList\nexceptions: nope\n');
  const source = watchExceptionList(file, log, 10_000);
  t.teardown(() => source.close());
  await source.ready;
  t.same(source.status(), { count: 0, failures: 1, healthy: false });
  await writeFile(
    file,
    'apiVersion: sts-guard.io/v1\nkind: ExceptionList\nexceptions:\n  - { name: a, reason: r, rules: ["*"], match: { names: [x] } }\n',
  );
  await source.reload();
  t.same(source.status(), { count: 1, failures: 1, healthy: true });
  t.equal(source.current().exceptions[0]?.name, 'a');
});
