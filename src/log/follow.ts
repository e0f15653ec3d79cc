/**
 * Following the log: run a pass (a catch-up) now, again at once after every write of this
 * process, and soon after every commit of another connection (the engine's `watch`), never two
 * at a time and never one left out: a wake during a pass runs one more pass after it. Closing the
 * log stops the follow. Projections, process managers and notifiers follow this way.
 */
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import { isPlainObject, readArgument } from '../model/validate.ts';
import type { LogCore } from './log-core.ts';

/** A follow in progress. */
export interface Following {
  /** Stops following; resolves once the pass in progress (if any) is done. */
  stop(): Promise<void>;
  /** Runs a pass soon (after the one in progress), as a write would. */
  wake(): void;
}

/**
 * Follows the log with `pass`: its result goes to `onResult`, what it throws to `onError`, and
 * following goes on either way.
 */
export function followLog<R>(core: LogCore, pass: () => Promise<R>, onResult: ((result: R) => void) | undefined, onError: (error: unknown) => void): Following {
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): void => {
    if (stopped) return;
    if (running !== undefined) {
      again = true;
      return;
    }
    running = pass().then((result) => onResult?.(result)).catch(onError).finally(() => {
      running = undefined;
      if (again) {
        again = false;
        run();
      }
    });
  };
  // This process's writes at once; other processes' (and machines') as the engine hears them.
  const unsubscribe = core.onWrite(run);
  const unwatch = core.storage.watch(run);
  const stop = async (): Promise<void> => {
    stopped = true;
    unsubscribe();
    unwatch();
    cancelOnClose();
    await running;
  };
  // Closing the log ends the follow too, rather than leaving a watch on a closed store.
  const cancelOnClose = core.onClose(stop);
  run();
  return { stop, wake: run };
}

/** What `follow` does with an error when the caller gave no `onError`: rethrows it asynchronously, like an unhandled rejection. */
export function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/**
 * The options of a `follow`: an object holding at most the callbacks `names`, each a function.
 * @throws InvalidArgumentError naming the option.
 */
export function prepareFollowOptions<T extends object>(options: unknown, names: readonly (keyof T & string)[]): T {
  const read = readArgument(options ?? {}, 'options');
  if (!isPlainObject(read)) throw new InvalidArgumentError(`options: expected { ${names.map((name) => `${name}?`).join(', ')} }, got ${describe(read)}`);
  for (const [key, value] of Object.entries(read)) {
    if (!(names as readonly string[]).includes(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${names.join(', ')}, got an unknown option`);
    if (value !== undefined && typeof value !== 'function') throw new InvalidArgumentError(`options.${key}: expected a function, got ${describe(value)}`);
  }
  return read as T;
}
