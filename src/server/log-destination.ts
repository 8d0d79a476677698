import { writeSync } from 'node:fs';
import { pino } from 'pino';

export interface BatchedDestination extends pino.DestinationStream {
  /** Hands the lines held so far to the file descriptor now; `done` runs once they are written. */
  flush(done?: (err?: Error) => void): void;
  /** The same, synchronously: for process exit. */
  flushSync(): void;
}

/**
 * pino's destination for a file descriptor (stdout for the server), written in batches of at least
 * `minLength` characters and at least every `flushIntervalMs`, as `pino.destination({ minLength,
 * periodicFlush })` does, but without its cost per line: sonic-boom measures the UTF-8 length of
 * its whole pending batch on every write, which made a review's log line ~2 µs dearer than
 * building it (bench/README.md, issue 21). Lines are held here as they come and handed to a
 * sonic-boom destination as one string per batch, so its handling of partial writes and EAGAIN
 * stays in use. The lines held are written on exit; a SIGKILL or an OOM kill can lose up to
 * `flushIntervalMs` of them.
 */
export function batchedDestination(options: {
  fd: number;
  minLength: number;
  flushIntervalMs: number;
}): BatchedDestination {
  const sink = pino.destination({ dest: options.fd, sync: true });
  let lines: string[] = [];
  let held = 0;
  const handOver = () => {
    if (lines.length === 0) return;
    const batch = lines.join('');
    lines = [];
    held = 0;
    try {
      sink.write(batch);
    } catch {
      // pino ends its destination when the event loop empties (beforeExit), and sonic-boom then
      // refuses writes: a line logged after that is written directly, as best it can be, as the
      // process is exiting.
      try {
        writeSync(options.fd, batch);
      } catch {}
    }
  };
  const timer = setInterval(handOver, options.flushIntervalMs);
  timer.unref();
  // Before pino's own handlers (registered with the sink above), which flush and end the sink;
  // once exiting, a line (from an exit handler registered after this one) is written at once.
  let exiting = false;
  process.prependListener('beforeExit', handOver);
  process.prependListener('exit', () => {
    exiting = true;
    handOver();
  });
  return {
    write(line: string) {
      lines.push(line);
      held += line.length;
      if (held >= options.minLength || exiting) handOver();
    },
    flush(done) {
      handOver();
      sink.flush(done);
    },
    flushSync() {
      handOver();
      sink.flushSync();
    },
  };
}
