/** The server's log destination: review lines batched, yet none lost and none held for long. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const destination = fileURLToPath(new URL('../../src/server/log-destination.ts', import.meta.url));

/** Runs `body` in a fresh Node process whose stdout is the batched destination; resolves with each chunk read and when it came. */
function run(body: string): Promise<{ chunks: Array<{ text: string; atMs: number }>; code: number | null }> {
  const script = `import { pino } from 'pino';
import { batchedDestination } from ${JSON.stringify(destination)};
const log = pino({ base: null, timestamp: false }, batchedDestination({ fd: 1, minLength: 4096, flushIntervalMs: 250 }));
${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const started = performance.now();
  const chunks: Array<{ text: string; atMs: number }> = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => chunks.push({ text, atMs: performance.now() - started }));
  return new Promise((resolve) => child.on('close', (code) => resolve({ chunks, code })));
}

const lines = (chunks: Array<{ text: string }>) =>
  chunks
    .map((c) => c.text)
    .join('')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { msg: string; n?: number });

t.test('the lines held when the process exits are written, in order', async (t) => {
  const { chunks, code } = await run(`for (let n = 0; n < 3; n++) log.info({ n }, 'held'); process.exit(0);`);
  t.equal(code, 0);
  t.same(
    lines(chunks).map((l) => l.n),
    [0, 1, 2],
  );
});

t.test('the event loop empties: every line is written and the process exits 0', async (t) => {
  // pino ends its destination on beforeExit; a line logged then (as closeWithGrace logs while the
  // server closes) and one logged on exit must still be written, and nothing may throw.
  const { chunks, code } = await run(
    `log.info('first'); process.on('beforeExit', () => log.info('before exit')); process.on('exit', () => log.info('on exit'));`,
  );
  t.equal(code, 0);
  t.same(
    lines(chunks).map((l) => l.msg),
    ['first', 'before exit', 'on exit'],
  );
});

t.test('a quiet process: a line shows up within the flush interval, not at exit', async (t) => {
  const { chunks } = await run(`log.info('alone'); setTimeout(() => log.info('later'), 1500);`);
  t.same(
    lines(chunks).map((l) => l.msg),
    ['alone', 'later'],
  );
  const first = chunks.find((c) => c.text.includes('alone'));
  const second = chunks.find((c) => c.text.includes('later'));
  t.ok(first && second && first !== second, 'the first line came in its own batch');
  // 'later' is logged 1.5 s after 'alone': held until then, both would arrive together.
  const gap = (second?.atMs ?? 0) - (first?.atMs ?? 0);
  t.ok(gap > 1000, `long before the second line (${gap.toFixed(0)} ms apart)`);
});

t.test('a busy process: every line is written once, whole and in order', async (t) => {
  // ~20 KB in one tick: handed over in batches of about 4 KB while it runs, the rest on the timer.
  const { chunks } = await run(
    `for (let n = 0; n < 100; n++) log.info({ n, pad: 'x'.repeat(170) }, 'busy'); setTimeout(() => {}, 600);`,
  );
  t.same(
    lines(chunks).map((l) => l.n),
    Array.from({ length: 100 }, (_, n) => n),
  );
});
