import { mkdirSync } from 'node:fs';
import type { Duration } from 'date-fns';
import { openValue, toEnvelope } from '../crypto/envelope.ts';
import { KeyRing, parseDuration, parseMasterKey, unlockStore } from '../crypto/key-ring.ts';
import type { Keys } from '../crypto/keys.ts';
import { batchKeys, sealBatch } from '../crypto/seal-batch.ts';
import { InvalidArgumentError, LogClosedError } from '../errors.ts';
import { applyPatchAtomic } from '../model/fold.ts';
import { describe } from '../model/json-pointer.ts';
import type { AppendOptions, AppendResult, Identity, LogEvent, NewEvent, ReadOptions, VerifyResult } from '../model/types.ts';
import { atBoundary, isPlainObject, prepareAppendOptions, prepareCallback, prepareEvents, prepareIdentity, prepareReadOptions, prepareSeq } from '../model/validate.ts';
import { appendInTransaction, conflictingSeqs, encodeEvents } from './append.ts';
import { assertAlone, compactStore } from './compact.ts';
import type { Log, OpenLogOptions } from './log.ts';
import { loadEvent, readEvents, type BodyDecoder } from './read.ts';
import { decodeBody, toLogEvent, type Revealer } from './record.ts';
import { indexedSeqs, lastSeq, openStore, type Store } from './store.ts';
import type { Projection, ProjectionOptions } from '../projections/projection.ts';
import { StoredProjection } from '../projections/projector.ts';
import { verifyStore } from './verify.ts';
import { storeStats, type LogStats } from './stats.ts';

const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
const OPTION_KEYS = new Set(['path', 'masterKey', 'keyTtl', 'redact', 'clock', 'autoExpire', 'maxEventBytes']);

type Redact = NonNullable<OpenLogOptions['redact']>;

interface Settings {
  path: string;
  masterKey: Uint8Array | undefined;
  keyTtl: Duration | undefined;
  redact: Redact;
  clock: () => Date;
  autoExpire: boolean;
  maxEventBytes: number;
}

function prepareOpenOptions(options: unknown): Settings {
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { path, ... }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  const { path, masterKey, keyTtl, redact, clock, autoExpire, maxEventBytes } = options;
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError(`options.path: expected a directory path, got ${describe(path)}`);
  if (maxEventBytes !== undefined && (typeof maxEventBytes !== 'number' || !Number.isSafeInteger(maxEventBytes) || maxEventBytes < 1)) {
    throw new InvalidArgumentError(`options.maxEventBytes: expected a positive integer, got ${describe(maxEventBytes)}`);
  }
  for (const [name, value] of [['clock', clock], ['redact', redact]] as const) {
    if (value !== undefined && typeof value !== 'function') throw new InvalidArgumentError(`options.${name}: expected a function, got ${describe(value)}`);
  }
  if (autoExpire !== undefined && typeof autoExpire !== 'boolean') throw new InvalidArgumentError(`options.autoExpire: expected a boolean, got ${describe(autoExpire)}`);
  return {
    path,
    masterKey: masterKey === undefined ? undefined : parseMasterKey(masterKey),
    keyTtl: keyTtl === undefined ? undefined : parseDuration(keyTtl, 'options.keyTtl'),
    redact: (redact as Redact | undefined) ?? (() => null),
    clock: (clock as (() => Date) | undefined) ?? (() => new Date()),
    autoExpire: autoExpire === true,
    maxEventBytes: maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
  };
}

class LmdbLog implements Log {
  #store: Store;
  readonly #settings: Settings;
  readonly #ring: KeyRing;
  readonly #decode: BodyDecoder;
  #closed = false;
  /** Called after every write of this process (followers of projections). */
  readonly #writeListeners = new Set<() => void>();
  /** Projection work close() waits for, and follows it stops. */
  readonly #running = new Set<Promise<unknown>>();
  readonly #onClose = new Set<() => Promise<void>>();
  /** Set while compact() swaps the store file; every operation waits for it. */
  #compaction: Promise<void> | undefined;

  constructor(store: Store, settings: Settings, kek: Uint8Array | undefined) {
    this.#store = store;
    this.#settings = settings;
    this.#decode = this.#decoder(false);
    this.#ring = new KeyRing(() => this.#openStore(), {
      kek,
      keyTtl: settings.keyTtl,
      clock: () => this.#now(),
      maxEventBytes: settings.maxEventBytes,
      onWrite: () => this.#notifyWrite(),
    });
    if (settings.autoExpire) this.#ring.startAutoExpire();
  }

  get keys(): Keys {
    return this.#ring;
  }

  #notifyWrite(): void {
    for (const listener of this.#writeListeners) listener();
  }

  projection<State = unknown>(name: string, options: ProjectionOptions<State> = {}): Projection<State> {
    if (this.#closed) throw new LogClosedError();
    return new StoredProjection<State>(name, options, {
      store: () => this.#openStore(),
      ready: () => this.#beginRead(),
      decode: this.#decode,
      onWrite: (listener) => {
        this.#writeListeners.add(listener);
        return () => this.#writeListeners.delete(listener);
      },
      track: (work) => {
        this.#running.add(work);
        const done = () => this.#running.delete(work);
        work.then(done, done);
        return work;
      },
      onClose: (stop) => {
        this.#onClose.add(stop);
        return () => this.#onClose.delete(stop);
      },
    });
  }

  #openStore(): Store {
    if (this.#closed) throw new LogClosedError();
    return this.#store;
  }

  /** Waits out a compaction in progress, then checks the log is open. */
  async #ready(): Promise<void> {
    while (this.#compaction !== undefined) await this.#compaction.catch(() => {});
    if (this.#closed) throw new LogClosedError();
  }

  /**
   * Like #ready, and moves this process's read snapshot to the latest commit: lmdb-js renews it
   * once per event turn, which can miss a commit another process made within the turn.
   */
  async #beginRead(): Promise<void> {
    await this.#ready();
    this.#store.root.resetReadTxn();
  }

  #now(): number {
    const now = this.#settings.clock();
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new InvalidArgumentError(`options.clock: expected it to return a valid Date, got ${describe(now)}`);
    return now.getTime();
  }

  /**
   * Decrypts where the key lives, redacts where it is gone; one key lookup per event. Without a
   * master key, values under a live key throw MissingMasterKeyError (raw reads need none).
   */
  #reveal: Revealer = (seq, aggregate, key) => {
    const material = this.#ring.keyForDecryption(key);
    if (material === undefined) return (_, path) => this.#settings.redact({ aggregate, path, key });
    return (envelope, path) => openValue(envelope, material, key, aggregate, path, seq);
  };

  #revealRaw: Revealer = (_seq, _aggregate, key) => (envelope) => toEnvelope(envelope, key);

  #decoder(raw: boolean): BodyDecoder {
    const reveal = raw ? this.#revealRaw : this.#reveal;
    return (seq, body) => toLogEvent(seq, body, reveal);
  }

  #load = (seq: number): LogEvent => loadEvent(this.#store, seq, this.#decode);

  async append(events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    if (this.#closed) throw new LogClosedError();
    // Validated (and copied) before the first await, so the caller may reuse its objects at once.
    const prepared = prepareEvents(events, this.#now());
    const appendOptions = prepareAppendOptions(options);
    await this.#ready();
    const keyIds = batchKeys(prepared);
    for (;;) {
      const keys = keyIds.length === 0 ? undefined : this.#ring.prepareBatchKeys(keyIds);
      const batch = encodeEvents(prepared, this.#settings.maxEventBytes, keys === undefined ? undefined : sealBatch(prepared, keys.keys));
      const store = this.#openStore();
      const result = await store.root.transaction(() => {
        // A key shredded since it was fetched must not gain new ciphertext (that throws); a key
        // another process created meanwhile means encrypting again under the stored one.
        if (keys !== undefined && !keys.isCurrent()) return undefined;
        const result = appendInTransaction(store, batch, appendOptions, this.#load);
        if (result.status === 'ok' && !appendOptions.dryRun) keys?.commit();
        return result;
      });
      if (result === undefined) continue;
      if (result.status === 'ok' && !appendOptions.dryRun) {
        if (keys?.created === true) this.#ring.reschedule();
        this.#notifyWrite();
      }
      return result;
    }
  }

  async head(): Promise<number> {
    await this.#beginRead();
    return lastSeq(this.#store);
  }

  async get(seq: number): Promise<LogEvent | undefined> {
    const checked = prepareSeq(seq, 'seq', 1);
    await this.#beginRead();
    const record = this.#store.events.getBinary(checked);
    return record === undefined ? undefined : this.#decode(checked, decodeBody(record, checked));
  }

  read(options?: ReadOptions): AsyncIterable<LogEvent> {
    if (this.#closed) throw new LogClosedError();
    const prepared = prepareReadOptions(options);
    const decode = prepared.raw ? this.#decoder(true) : this.#decode;
    const events = async function* (log: LmdbLog): AsyncGenerator<LogEvent> {
      await log.#beginRead();
      const stream = readEvents(log.#store, prepared, decode);
      try {
        for (;;) {
          // Checked before touching the store again: the reader may have awaited a close().
          if (log.#closed) throw new LogClosedError('the log was closed while reading');
          const next = stream.next();
          if (next.done === true) return;
          yield next.value;
        }
      } finally {
        stream.return(undefined);
      }
    };
    // Each iteration starts its own stream from the latest commit.
    return { [Symbol.asyncIterator]: () => events(this) };
  }

  async conflicts(base: number, aggregate: Identity): Promise<LogEvent[]> {
    const checkedBase = prepareSeq(base, 'base', 0);
    const checkedAggregate = prepareIdentity(aggregate, 'aggregate');
    await this.#beginRead();
    return conflictingSeqs(this.#store, checkedAggregate, checkedBase, new Set()).map(this.#load);
  }

  async state(aggregate: Identity): Promise<{ state: unknown; head: number }> {
    const checked = prepareIdentity(aggregate, 'aggregate');
    await this.#beginRead();
    const head = lastSeq(this.#store);
    let state: unknown = {};
    // Bounded by head, so the state is exactly the fold at the head reported with it.
    for (const seq of indexedSeqs(this.#store.byAggregate, checked, 1, head + 1)) {
      const event = this.#load(seq);
      if ('action' in event) state = applyPatchAtomic(state, event.action.patch);
    }
    return { state, head };
  }

  async verify(options: { onProgress?: (seq: number, head: number) => void } = {}): Promise<VerifyResult> {
    const onProgress = prepareCallback<(done: number, total: number) => void>(options, 'onProgress');
    await this.#beginRead();
    return verifyStore(this.#store, onProgress);
  }

  async stats(): Promise<LogStats> {
    await this.#beginRead();
    return storeStats(this.#store, this.#settings.path);
  }

  async compact(options: { onProgress?: (copied: number, total: number) => void } = {}): Promise<void> {
    const onProgress = prepareCallback<(done: number, total: number) => void>(options, 'onProgress');
    await this.#beginRead();
    assertAlone(this.#store, this.#settings.path);
    const compaction = (async () => {
      await this.#store.root.committed;
      try {
        await compactStore(this.#store, this.#settings.path, onProgress);
      } finally {
        // Whether or not the copy went through, this log carries on with the store on disk.
        this.#store = openStore(this.#settings.path);
        this.#compaction = undefined;
      }
    })();
    this.#compaction = compaction;
    await compaction;
  }

  async close(): Promise<void> {
    while (this.#compaction !== undefined) await this.#compaction.catch(() => {});
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#onClose].map((stop) => stop()));
    // Catch-ups in flight end at their next batch with LogClosedError; wait for them to let go.
    await Promise.allSettled([...this.#running]);
    this.#writeListeners.clear();
    this.#ring.close();
    await this.#store.root.committed;
    await this.#store.root.close();
  }
}

/**
 * Opens the log stored in `options.path`, creating the directory and the store when missing.
 * Nothing is scanned at open, so it is as fast for a million events as for none.
 *
 * @throws InvalidArgumentError for bad options.
 * @throws WrongMasterKeyError when `masterKey` is not the store's.
 * @throws UnsupportedFormatError when the store was written by a newer format version.
 * @example
 * const log = await openLog({ path: './data/shop', masterKey: process.env.COHERENCE_MASTER_KEY });
 * try { console.log(await log.head()); } finally { await log.close(); }
 */
export async function openLog(options: OpenLogOptions): Promise<Log> {
  const settings = atBoundary('options', () => prepareOpenOptions(options));
  mkdirSync(settings.path, { recursive: true });
  const store = openStore(settings.path);
  let kek: Uint8Array | undefined;
  try {
    if (settings.masterKey !== undefined) kek = unlockStore(store, settings.masterKey);
  } catch (e) {
    settings.masterKey?.fill(0);
    await store.root.close();
    throw e;
  }
  // Only the derived KEK is kept; the master key copy is wiped.
  settings.masterKey?.fill(0);
  return new LmdbLog(store, settings, kek);
}
