import { spawnSync } from 'node:child_process';
import t from 'tap';
import { repoRoot } from './support/repo.js';

// The validators in src/generated/ are compiled from the schemas in src/admission/schema.ts and
// src/config-schema.ts; a schema changed without regenerating them would validate the old shape.
t.test('src/generated/ is what scripts/compile-schemas.ts makes of the current schemas', async (t) => {
  const check = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/compile-schemas.ts', '--check'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  t.equal(check.status, 0, check.stderr || 'up to date');
});
