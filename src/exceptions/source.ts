import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ExceptionSource } from '../pipeline/ports.js';
import { type ExceptionList, NO_EXCEPTIONS } from '../policy/index.js';
import { ExceptionListError, parseExceptionList } from './load.js';

/** What the metrics report about the exception list. */
export interface ExceptionListStatus {
  /** Exceptions in force. */
  count: number;
  /** Loads that failed since start (the previous list stayed in force). */
  failures: number;
  /** True when the last load succeeded. */
  healthy: boolean;
}

export interface WatchedExceptionSource extends ExceptionSource {
  status(): ExceptionListStatus;
  /** Resolves once the first load finished (successfully or not). */
  ready: Promise<void>;
  /** Reads the file again now (the watch calls it; tests may too). */
  reload(): Promise<void>;
  close(): void;
}

/**
 * The exception list from a file (ConfigMap `sts-guard-exceptions` mounted into the pod), reloaded
 * when it changes: the kubelet swaps a mounted ConfigMap's `..data` symlink, so the directory is
 * watched, as for the serving certificate. A list that fails to load or validate is logged and
 * counted, and the last good one stays in force: a typo never turns every exception off, nor
 * crashes the server. A file that fails at start leaves no exceptions in force until it is fixed;
 * a missing file (the optional ConfigMap does not exist) is an empty list.
 */
export function watchExceptionList(
  path: string,
  log: Logger,
  debounceMs = 200,
  /** Called after each load that put a new list in force (the audit rescans everything). */
  onChange: () => void = () => {},
): WatchedExceptionSource {
  let list: ExceptionList = NO_EXCEPTIONS;
  let failures = 0;
  let healthy = false;
  let timer: NodeJS.Timeout | undefined;
  // The text last tried: a directory event that changed nothing is neither reloaded nor counted twice.
  let lastText: string | undefined;

  const load = async () => {
    try {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        // The ConfigMap is mounted optional: absent means no exceptions, not a broken list.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new ExceptionListError(`${path}: cannot read: ${(error as Error).message}`);
        }
        text = '';
      }
      if (text === lastText) return;
      lastText = text;
      list = parseExceptionList(text, path);
      healthy = true;
      log.info({ file: path, exceptions: list.exceptions.length }, 'exception list loaded');
      onChange();
    } catch (err) {
      failures++;
      healthy = false;
      log.error(
        { err, file: path, inForce: list.exceptions.length },
        'exception list rejected; the previous list stays in force',
      );
    }
  };
  // One load at a time: a watch event and an explicit reload must not read and count the same text twice.
  let queue: Promise<void> = Promise.resolve();
  const reload = () => {
    queue = queue.then(load);
    return queue;
  };
  const ready = reload();
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(dirname(path), () => {
      clearTimeout(timer);
      timer = setTimeout(reload, debounceMs);
    });
  } catch (err) {
    log.error({ err, file: path }, 'cannot watch the exception list; changes need a restart');
  }

  return {
    current: () => list,
    status: () => ({ count: list.exceptions.length, failures, healthy }),
    ready,
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
