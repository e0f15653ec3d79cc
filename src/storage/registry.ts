/**
 * The public face of an engine: what `memoryEngine()` and `postgresEngine()` return and
 * `openLog({ engine })` takes. The handle shows only its kind; the engine behind it is reached
 * through this module alone, so nothing on the object a user holds leads to storage internals.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { EngineKind, StorageEngine } from './engine.ts';

/**
 * A storage engine for `openLog({ engine })`. Logs opened on one engine object share one store.
 *
 * @example
 * const engine = memoryEngine();
 * const log = await openLog({ engine });
 */
export interface Engine {
  /** Which engine this is: `'lmdb'`, `'memory'` or `'postgres'`. */
  readonly kind: EngineKind;
}

const engines = new WeakMap<Engine, StorageEngine>();

/** Wraps an engine in its public handle. */
export function toEngineHandle(engine: StorageEngine): Engine {
  const handle: Engine = Object.freeze({ kind: engine.kind });
  engines.set(handle, engine);
  return handle;
}

/**
 * The engine behind a handle.
 * @throws InvalidArgumentError when `handle` was not made by an engine factory of coherence.
 */
export function storageEngineOf(handle: unknown): StorageEngine {
  const engine = typeof handle === 'object' && handle !== null ? engines.get(handle as Engine) : undefined;
  if (engine === undefined) throw new InvalidArgumentError('options.engine: expected an engine from memoryEngine() or postgresEngine(), got something else');
  return engine;
}
