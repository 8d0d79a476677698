import t from 'tap';
import { unsupportedRuntime } from '../../src/server/runtime.js';

t.test('Node.js 24 and 22.12+ are supported: no warning at start-up', async (t) => {
  t.equal(unsupportedRuntime('v24.19.0'), undefined);
  t.equal(unsupportedRuntime('v22.12.0'), undefined);
  t.equal(unsupportedRuntime('v26.0.0'), undefined);
});

t.test('Node.js 20 is named end-of-life, with where to get 24', async (t) => {
  const warning = unsupportedRuntime('v20.20.2');
  t.match(warning, /Node\.js v20\.20\.2 is not supported/);
  t.match(warning, /end-of-life/);
  t.match(warning, /scripts\/install-node\.sh/);
});

t.test('Node.js 22 before 22.12 is outside the range, but not called end-of-life', async (t) => {
  const warning = unsupportedRuntime('v22.11.0');
  t.match(warning, /not supported/);
  t.notMatch(warning, /end-of-life/);
});
