import { mkdirSync } from 'node:fs';
import { CorruptLogError, InvalidArgumentError, LogClosedError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import { applyPatchAtomic } from '../model/fold.ts';
import type { AppendOptions, AppendResult, Identity, LogEvent, NewEvent, ReadOptions, VerifyResult } from '../model/types.ts';
import { isPlainObject, prepareAppendOptions, prepareEvents, prepareIdentity, prepareReadOptions, prepareSeq } from '../model/validate.ts';
import { appendInTransaction, conflictingSeqs, encodeEvents } from './append.ts';
import type { Log, OpenLogOptions } from './log.ts';
import { readEvents } from './read.ts';
import { decodeEvent } from './record.ts';
import { indexedSeqs, lastSeq, openStore, type Store } from './store.ts';
import { verifyStore } from './verify.ts';

const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
const OPTION_KEYS = new Set(['path', 'masterKey', 'keyTtl', 'redact', 'clock', 'autoExpire', 'maxEventBytes']);

interface Settings {
  path: string;
  maxEventBytes: number;
  clock: () => Date;
}

function prepareOpenOptions(options: unknown): Settings {
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { path, ... }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  const { path, maxEventBytes, clock } = options;
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError(`options.path: expected a directory path, got ${describe(path)}`);
  if (maxEventBytes !== undefined && (typeof maxEventBytes !== 'number' || !Number.isSafeInteger(maxEventBytes) || maxEventBytes < 1)) {
    throw new InvalidArgumentError(`options.maxEventBytes: expected a positive integer, got ${describe(maxEventBytes)}`);
  }
  if (clock !== undefined && typeof clock !== 'function') throw new InvalidArgumentError(`options.clock: expected a function returning a Date, got ${describe(clock)}`);
  return {
    path,
    maxEventBytes: maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
    clock: (clock as (() => Date) | undefined) ?? (() => new Date()),
  };
}

class LmdbLog implements Log {
  readonly #store: Store;
  readonly #settings: Settings;
  #closed = false;

  constructor(store: Store, settings: Settings) {
    this.#store = store;
    this.#settings = settings;
  }

  #assertOpen(): void {
    if (this.#closed) throw new LogClosedError();
  }

  /**
   * Checks the log is open and moves this process's read snapshot to the latest commit: lmdb-js
   * renews it once per event turn, which can miss a commit another process made within the turn.
   */
  #beginRead(): void {
    this.#assertOpen();
    this.#store.root.resetReadTxn();
  }

  #now(): number {
    const now = this.#settings.clock();
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new InvalidArgumentError(`options.clock: expected it to return a valid Date, got ${describe(now)}`);
    return now.getTime();
  }

  #decode = (seq: number, record: Buffer): LogEvent => decodeEvent(record, seq);

  #load = (seq: number): LogEvent => {
    const record = this.#store.events.getBinary(seq);
    if (record === undefined) throw new CorruptLogError(`event ${seq}: indexed but missing`);
    return this.#decode(seq, record);
  };

  async append(events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    this.#assertOpen();
    const prepared = prepareEvents(events, this.#now());
    const appendOptions = prepareAppendOptions(options);
    const batch = encodeEvents(prepared, this.#settings.maxEventBytes);
    return this.#store.root.transaction(() => appendInTransaction(this.#store, batch, appendOptions, this.#load));
  }

  async head(): Promise<number> {
    this.#beginRead();
    return lastSeq(this.#store);
  }

  async get(seq: number): Promise<LogEvent | undefined> {
    this.#beginRead();
    const checked = prepareSeq(seq, 'seq', 1);
    const record = this.#store.events.getBinary(checked);
    return record === undefined ? undefined : this.#decode(checked, record);
  }

  read(options?: ReadOptions): AsyncIterable<LogEvent> {
    this.#assertOpen();
    const prepared = prepareReadOptions(options);
    return {
      [Symbol.asyncIterator]: () => {
        let events: Generator<LogEvent> | undefined;
        return {
          next: async () => {
            if (this.#closed) {
              events?.return(undefined);
              throw new LogClosedError('the log was closed while reading');
            }
            if (events === undefined) {
              this.#beginRead();
              events = readEvents(this.#store, prepared, this.#decode);
            }
            return events.next();
          },
          return: async () => {
            events?.return(undefined);
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  async conflicts(base: number, aggregate: Identity): Promise<LogEvent[]> {
    this.#beginRead();
    const checkedBase = prepareSeq(base, 'base', 0);
    const checkedAggregate = prepareIdentity(aggregate, 'aggregate');
    return conflictingSeqs(this.#store, checkedAggregate, checkedBase, new Set()).map(this.#load);
  }

  async state(aggregate: Identity): Promise<{ state: unknown; head: number }> {
    this.#beginRead();
    const checked = prepareIdentity(aggregate, 'aggregate');
    const head = lastSeq(this.#store);
    let state: unknown = {};
    // Bounded by head, so the state is exactly the fold at the head reported with it.
    for (const seq of indexedSeqs(this.#store.byAggregate, checked, 1, head + 1)) {
      const event = this.#load(seq);
      if ('action' in event) state = applyPatchAtomic(state, event.action.patch);
    }
    return { state, head };
  }

  async verify(): Promise<VerifyResult> {
    this.#beginRead();
    return verifyStore(this.#store);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#store.root.committed;
    await this.#store.root.close();
  }
}

/**
 * Opens the log stored in `options.path`, creating the directory and the store when missing.
 * Nothing is scanned at open, so it is as fast for a million events as for none.
 *
 * @throws InvalidArgumentError for bad options.
 * @throws UnsupportedFormatError when the store was written by a newer format version.
 * @example
 * const log = await openLog({ path: './data/shop' });
 * try { console.log(await log.head()); } finally { await log.close(); }
 */
export async function openLog(options: OpenLogOptions): Promise<Log> {
  const settings = prepareOpenOptions(options);
  mkdirSync(settings.path, { recursive: true });
  return new LmdbLog(openStore(settings.path), settings);
}
