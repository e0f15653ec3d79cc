/**
 * The composition root: `openLog` settles the options, opens the engine (LMDB for a `path`),
 * unlocks the key ring, and puts the parts together behind the `Log` facade. It is the only
 * module that knows which engine it got.
 */
import { parseMasterKey } from '../crypto/key-wrap.ts';
import { InvalidArgumentError } from '../errors.ts';
import { keysFacade, KeyRing } from '../keys/key-ring.ts';
import type { Keys } from '../keys/keys.ts';
import { unlockStore } from '../keys/unlock.ts';
import { append } from '../log/append.ts';
import { KeyCache } from '../log/key-cache.ts';
import { LogCore, type LogSettings } from '../log/log-core.ts';
import { conflictsOf, readEvents } from '../log/read.ts';
import { stateOf } from '../log/state.ts';
import { revealRecords } from '../log/reveal.ts';
import { verifyLog } from '../log/verify.ts';
import { parseDuration } from '../model/duration.ts';
import { prepareSchemas } from '../model/schemas.ts';
import { describe } from '../model/json-pointer.ts';
import type { AppendOptions, AppendOutcome, AppendResult, Identity, LogEvent, NewEvent, ReadOptions, VerifyResult } from '../model/types.ts';
import { atBoundary, isPlainObject, prepareCallback, prepareIdentity, prepareReadOptions, prepareSeq } from '../model/validate.ts';
import { openProjection } from '../projections/projector.ts';
import type { Projection, ProjectionOptions } from '../projections/projection.ts';
import type { StorageEngine } from '../storage/engine.ts';
import { lmdbEngine } from '../storage/lmdb/lmdb-engine.ts';
import { storageEngineOf } from '../storage/registry.ts';
import { registerCore } from './internal.ts';
import type { Log, OpenLogOptions } from './log.ts';
import { logStats, type LogStats } from './stats.ts';

const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
const OPTION_KEYS = new Set(['path', 'engine', 'masterKey', 'keyTtl', 'redact', 'clock', 'autoExpire', 'maxEventBytes', 'schemas', 'snapshots']);

function prepareSnapshots(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value) || Object.keys(value).some((key) => key !== 'every')) {
    throw new InvalidArgumentError(`options.snapshots: expected { every }, got ${describe(value)}`);
  }
  const every = value.every;
  if (typeof every !== 'number' || !Number.isSafeInteger(every) || every < 1) {
    throw new InvalidArgumentError(`options.snapshots.every: expected an integer >= 1, got ${describe(every)}`);
  }
  return every;
}

interface Options {
  engine: StorageEngine;
  settings: LogSettings;
  masterKey: Uint8Array | undefined;
  autoExpire: boolean;
}

function prepareOpenOptions(options: unknown): Options {
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { path } or { engine }, ..., got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  const { path, engine, masterKey, keyTtl, redact, clock, autoExpire, maxEventBytes, schemas, snapshots } = options;
  if (path !== undefined && engine !== undefined) throw new InvalidArgumentError('options: expected path (LMDB) or engine, got both');
  if (engine === undefined && (typeof path !== 'string' || path.length === 0)) {
    throw new InvalidArgumentError(`options.path: expected a directory path (or options.engine), got ${describe(path)}`);
  }
  if (maxEventBytes !== undefined && (typeof maxEventBytes !== 'number' || !Number.isSafeInteger(maxEventBytes) || maxEventBytes < 1)) {
    throw new InvalidArgumentError(`options.maxEventBytes: expected a positive integer, got ${describe(maxEventBytes)}`);
  }
  for (const [name, value] of [['clock', clock], ['redact', redact]] as const) {
    if (value !== undefined && typeof value !== 'function') throw new InvalidArgumentError(`options.${name}: expected a function, got ${describe(value)}`);
  }
  if (autoExpire !== undefined && typeof autoExpire !== 'boolean') throw new InvalidArgumentError(`options.autoExpire: expected a boolean, got ${describe(autoExpire)}`);
  return {
    engine: engine === undefined ? lmdbEngine(path as string) : storageEngineOf(engine),
    settings: {
      clock: (clock as (() => Date) | undefined) ?? (() => new Date()),
      redact: (redact as LogSettings['redact'] | undefined) ?? (() => null),
      maxEventBytes: (maxEventBytes as number | undefined) ?? DEFAULT_MAX_EVENT_BYTES,
      keyTtl: keyTtl === undefined ? undefined : parseDuration(keyTtl, 'options.keyTtl'),
      sealStates: true,
      schemas: prepareSchemas(schemas),
      snapshotEvery: prepareSnapshots(snapshots),
    },
    masterKey: masterKey === undefined ? undefined : parseMasterKey(masterKey),
    autoExpire: autoExpire === true,
  };
}

/** The `Log` a user holds: its documented members, and nothing else reachable. */
class LogFacade implements Log {
  readonly #core: LogCore;
  readonly #ring: KeyRing;
  readonly #keys: Keys;

  constructor(core: LogCore, ring: KeyRing) {
    this.#core = core;
    this.#ring = ring;
    this.#keys = keysFacade(ring);
  }

  get keys(): Keys {
    return this.#keys;
  }

  append(events: NewEvent[], options: AppendOptions & { idempotencyKey?: undefined }): Promise<AppendOutcome>;
  append(events: NewEvent[], options: AppendOptions): Promise<AppendResult>;
  append(events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    return append(this.#core, events, options);
  }

  async head(): Promise<number> {
    this.#core.assertOpen();
    return this.#core.storage.head();
  }

  async get(seq: number): Promise<LogEvent | undefined> {
    const checked = prepareSeq(seq, 'seq', 1);
    this.#core.assertOpen();
    const [record] = await this.#core.storage.records([checked]);
    return record === undefined ? undefined : (await revealRecords(this.#core, [{ seq: checked, record }], 'plain')).events[0];
  }

  read(options?: ReadOptions): AsyncIterable<LogEvent> {
    this.#core.assertOpen();
    const prepared = prepareReadOptions(options);
    // Each iteration starts its own stream from the latest commit.
    return { [Symbol.asyncIterator]: () => readEvents(this.#core, prepared) };
  }

  async conflicts(base: number, aggregate: Identity): Promise<LogEvent[]> {
    const checkedBase = prepareSeq(base, 'base', 0);
    const checkedAggregate = prepareIdentity(aggregate, 'aggregate');
    return conflictsOf(this.#core, checkedBase, checkedAggregate);
  }

  async state(aggregate: Identity): Promise<{ state: unknown; head: number }> {
    return stateOf(this.#core, prepareIdentity(aggregate, 'aggregate'));
  }

  async verify(options: { onProgress?: (seq: number, head: number) => void } = {}): Promise<VerifyResult> {
    return verifyLog(this.#core, prepareCallback<(done: number, total: number) => void>(options, 'onProgress'));
  }

  projection<State = unknown>(name: string, options: ProjectionOptions<State> = {}): Projection<State> {
    this.#core.assertOpen();
    return openProjection(this.#core, name, options);
  }

  stats(): Promise<LogStats> {
    return logStats(this.#core);
  }

  async compact(options: { onProgress?: (copied: number, total: number) => void } = {}): Promise<void> {
    const onProgress = prepareCallback<(done: number, total: number) => void>(options, 'onProgress');
    this.#core.assertOpen();
    await this.#core.storage.compact(onProgress);
  }

  async close(): Promise<void> {
    this.#ring.close();
    await this.#core.close();
  }
}

/**
 * Opens the log stored in `options.path` (LMDB, creating the directory and the store when
 * missing) or in `options.engine`. Nothing is scanned at open, so it is as fast for a million
 * events as for none.
 *
 * @throws InvalidArgumentError for bad options.
 * @throws WrongMasterKeyError when `masterKey` is not the store's.
 * @throws UnsupportedFormatError when the store was written by a newer format version.
 * @example
 * const log = await openLog({ path: './data/shop', masterKey: process.env.COHERENCE_MASTER_KEY });
 * try { console.log(await log.head()); } finally { await log.close(); }
 */
export async function openLog(options: OpenLogOptions): Promise<Log> {
  const { engine, settings, masterKey, autoExpire } = atBoundary('options', () => prepareOpenOptions(options));
  try {
    const storage = await engine.open();
    let kek: Uint8Array | undefined;
    try {
      if (masterKey !== undefined) kek = await unlockStore(storage, masterKey);
    } catch (e) {
      await storage.close();
      throw e;
    }
    const core = new LogCore(storage, settings, new KeyCache(kek));
    const ring = new KeyRing(core);
    if (autoExpire) ring.startAutoExpire();
    const log = new LogFacade(core, ring);
    registerCore(log, core);
    return log;
  } finally {
    // Only the derived KEK is kept; the master key copy is wiped.
    masterKey?.fill(0);
  }
}
