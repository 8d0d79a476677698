import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` every `intervalMs` until it returns a value (anything but undefined), or fails
 * after `timeoutMs` naming `what`: a test that waits says what it waited for, and never hangs
 * until the runner's own timeout.
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
