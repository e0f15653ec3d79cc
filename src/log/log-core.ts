/**
 * The open log below its public face: the storage connection, the settings, the key cache, and
 * the bookkeeping every part above shares (closing, work in flight, this process's writes).
 * Append, read, state and verify are functions of it, one file each; the key ring and the
 * projections build on it; only the composition root (api/open-log.ts) makes one.
 */
import type { Duration } from '../model/duration.ts';
import type { Schemas } from '../model/schemas.ts';
import { CorruptLogError, InvalidArgumentError, LogClosedError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { LogEvent } from '../model/types.ts';
import type { Storage } from '../storage/engine.ts';
import { FoldCache } from './fold-cache.ts';
import type { KeyCache } from './key-cache.ts';
import { revealRecords, type Redact, type Reveal, type RevealContext, type Revealed } from './reveal.ts';

/** What `openLog` settles for the log. */
export interface LogSettings {
  clock: () => Date;
  redact: Redact;
  maxEventBytes: number;
  /** Lifetime of keys created implicitly by encrypting with an unknown key. */
  keyTtl: Duration | undefined;
  /**
   * Seal derived values (projection states) under their keys. Always true from `openLog`;
   * false only where the sealed-vs-plain benchmark builds a core itself for its baseline.
   */
  sealStates: boolean;
  /** Schema versions and upcasters by kind. */
  schemas: Schemas;
  /** Snapshot every this many actions of an aggregate; undefined: no snapshots. */
  snapshotEvery: number | undefined;
}

/** What a write of this process tells its listeners. */
export interface WriteNotice {
  /** The write stored new keys (autoExpire then looks at their expiry). */
  keysCreated: boolean;
}

export class LogCore implements RevealContext {
  readonly storage: Storage;
  readonly keys: KeyCache;
  readonly settings: LogSettings;
  /** Folds of aggregates with no plaintext under a key, by the head they were folded at (log/state.ts). */
  readonly folds = new FoldCache();
  #closed = false;
  readonly #writeListeners = new Set<(notice: WriteNotice) => void>();
  /** Work close() waits for. */
  readonly #running = new Set<Promise<unknown>>();
  /** Called when the log closes (follows stop). */
  readonly #onClose = new Set<() => Promise<void>>();
  /** Resolves once the last write handed to `inTurn` has been issued to the engine. */
  #lastIssued: Promise<void> = Promise.resolve();
  /** Writes handed to `inTurn` and not yet issued. */
  #waiting = 0;

  constructor(storage: Storage, settings: LogSettings, keys: KeyCache) {
    this.storage = storage;
    this.settings = settings;
    this.keys = keys;
  }

  get redact(): Redact {
    return this.settings.redact;
  }

  get sealStates(): boolean {
    return this.settings.sealStates;
  }

  get schemas(): Schemas {
    return this.settings.schemas;
  }

  /**
   * The log's clock, in milliseconds.
   * @throws InvalidArgumentError when the injected clock returns no valid Date.
   */
  now(): number {
    const now = this.settings.clock();
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new InvalidArgumentError(`options.clock: expected it to return a valid Date, got ${describe(now)}`);
    return now.getTime();
  }

  /** @throws LogClosedError once `close()` has begun. */
  assertOpen(message?: string): void {
    if (this.#closed) throw new LogClosedError(message);
  }

  /** Tells this process's listeners (projection follows, autoExpire) about a write it made. */
  notifyWrite(notice: WriteNotice = { keysCreated: false }): void {
    for (const listener of this.#writeListeners) listener(notice);
  }

  /** Calls `listener` after every write of this process; returns the unsubscribe function. */
  onWrite(listener: (notice: WriteNotice) => void): () => void {
    this.#writeListeners.add(listener);
    return () => this.#writeListeners.delete(listener);
  }

  /** Whether a write with nothing to read first would be issued at once by `inTurn` (none is waiting). */
  issuesAtOnce(): boolean {
    return this.#waiting === 0;
  }

  /**
   * Issues writes to the engine in the order they were asked for, whatever each awaited before
   * (reading its keys): appends pipelined with the bases their predecessors leave then meet the
   * log in that order, as they would with nothing to await. Call it synchronously, in call
   * order; `issue` runs once every earlier one has been issued (not finished). With nothing to
   * wait for (`ready` undefined, no earlier write waiting), `issue` runs at once, in this call.
   */
  inTurn<P, T>(ready: Promise<P> | undefined, issue: (prepared: P | undefined) => Promise<T>): Promise<T> {
    if (ready === undefined && this.#waiting === 0) return issue(undefined);
    this.#waiting++;
    const previous = this.#lastIssued;
    let issued!: () => void;
    this.#lastIssued = new Promise((resolve) => (issued = resolve));
    const done = () => {
      this.#waiting--;
      issued();
    };
    return Promise.all([ready, previous]).then(
      ([prepared]) => {
        try {
          return issue(prepared);
        } finally {
          done();
        }
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
  }

  /** Lets `close()` wait for `work` before closing the store. */
  track<T>(work: Promise<T>): Promise<T> {
    this.#running.add(work);
    const done = () => this.#running.delete(work);
    work.then(done, done);
    return work;
  }

  /** Calls `stop` when the log closes; returns the function that cancels this. */
  onClose(stop: () => Promise<void>): () => void {
    this.#onClose.add(stop);
    return () => this.#onClose.delete(stop);
  }

  /**
   * The events at `seqs` (which an index named), as a reader sees them, each with what it was
   * decrypted with.
   * @throws CorruptLogError when one is missing.
   */
  async events(seqs: readonly number[], reveal: Reveal = 'plain'): Promise<Revealed> {
    this.assertOpen();
    const records = await this.storage.records(seqs);
    return revealRecords(
      this,
      seqs.map((seq, i) => {
        const record = records[i];
        if (record === undefined) throw new CorruptLogError(`event ${seq}: indexed but missing`);
        return { seq, record };
      }),
      reveal,
    );
  }

  /** Stops follows, waits for work in flight, wipes the keys and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#onClose].map((stop) => stop()));
    // Catch-ups in flight end at their next batch with LogClosedError; wait for them to let go.
    await Promise.allSettled([...this.#running]);
    this.#writeListeners.clear();
    this.keys.clear();
    this.folds.clear();
    await this.storage.close();
  }
}
