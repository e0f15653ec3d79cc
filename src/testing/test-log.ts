/**
 * Throw-away logs for tests: a store in a fresh temporary directory that `close()` removes, with
 * a random master key unless one is given, so that encrypting code runs as it would in production.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coreOf, registerCore } from '../api/internal.ts';
import type { Log, OpenLogOptions } from '../api/log.ts';
import { openLog } from '../api/open-log.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { Keys } from '../keys/keys.ts';
import type { LogStats } from '../api/stats.ts';
import { describe } from '../model/json-pointer.ts';
import type { AppendOptions, AppendOutcome, AppendResult, Identity, LogEvent, NewEvent, ReadOptions, VerifyResult } from '../model/types.ts';
import type { Projection, ProjectionOptions } from '../projections/projection.ts';

/**
 * Options of {@link openTestLog}: those of `openLog` but the store's place. Without `engine`, the
 * store is LMDB (the default engine) in a fresh temporary directory; `masterKey` defaults to a
 * random one.
 */
export type TestLogOptions = Omit<OpenLogOptions, 'path'>;

/** A log on a throw-away store, and how to open another connection to the same store. */
export interface TestStore {
  log: Log;
  /** Opens another log on the same store (as another process would), with the same options. */
  connect(): Promise<Log>;
}

/** The log an {@link openTestLog} caller holds: the log's members; `close` also removes the store. */
class TestLog implements Log {
  readonly #log: Log;
  readonly #dir: string | undefined;

  constructor(log: Log, dir: string | undefined) {
    this.#log = log;
    this.#dir = dir;
    // The parts above the log (a command service) find the core behind this face too.
    registerCore(this, coreOf(log));
  }

  get keys(): Keys {
    return this.#log.keys;
  }

  append(events: NewEvent[], options: AppendOptions & { idempotencyKey?: undefined }): Promise<AppendOutcome>;
  append(events: NewEvent[], options: AppendOptions): Promise<AppendResult>;
  append(events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    return this.#log.append(events, options);
  }

  head(): Promise<number> {
    return this.#log.head();
  }

  get(seq: number): Promise<LogEvent | undefined> {
    return this.#log.get(seq);
  }

  read(options?: ReadOptions): AsyncIterable<LogEvent> {
    return this.#log.read(options);
  }

  conflicts(base: number, aggregate: Identity): Promise<LogEvent[]> {
    return this.#log.conflicts(base, aggregate);
  }

  state(aggregate: Identity): Promise<{ state: unknown; head: number }> {
    return this.#log.state(aggregate);
  }

  verify(options?: { onProgress?: (seq: number, head: number) => void }): Promise<VerifyResult> {
    return this.#log.verify(options);
  }

  projection<State = unknown>(name: string, options?: ProjectionOptions<State>): Projection<State> {
    return this.#log.projection(name, options);
  }

  stats(): Promise<LogStats> {
    return this.#log.stats();
  }

  compact(options?: { onProgress?: (copied: number, total: number) => void }): Promise<void> {
    return this.#log.compact(options);
  }

  async close(): Promise<void> {
    await this.#log.close();
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Opens a throw-away store (see {@link openTestLog}) and keeps what another connection to it needs. */
export async function openTestStore(options: TestLogOptions = {}): Promise<TestStore> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`options: expected the options of openLog without path, got ${describe(options)}`);
  if ('path' in options) throw new InvalidArgumentError('options.path: expected none: a test log lives in a temporary directory of its own (give engine for another store)');
  const settled: OpenLogOptions = { ...options, masterKey: options.masterKey ?? randomBytes(32).toString('hex') };
  const dir = options.engine === undefined ? mkdtempSync(join(tmpdir(), 'coherence-test-')) : undefined;
  if (dir !== undefined) settled.path = dir;
  let log: Log;
  try {
    log = await openLog(settled);
  } catch (e) {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { log: new TestLog(log, dir), connect: () => openLog(settled) };
}

/**
 * A log on a throw-away store, for tests: LMDB in a fresh temporary directory (or the `engine`
 * given), which `close()` removes. With no `masterKey`, a random one, so encryption works.
 * Any other option is `openLog`'s (a `clock`, `redact`, ...).
 *
 * @throws InvalidArgumentError for bad options, or a `path` (the directory is the test log's own).
 * @example
 * const log = await openTestLog({ clock: () => new Date('2025-01-01') });
 * try { await log.append(events, { base: 0 }); } finally { await log.close(); }
 */
export async function openTestLog(options: TestLogOptions = {}): Promise<Log> {
  return (await openTestStore(options)).log;
}
