import type { Duration, Keys } from '../keys/keys.ts';
import type { Projection, ProjectionOptions } from '../projections/projection.ts';
import type { KindSchema } from '../model/schemas.ts';
import type { Engine } from '../storage/registry.ts';
import type { LogStats } from './stats.ts';
import type {
  AppendOptions,
  AppendOutcome,
  AppendResult,
  Identity,
  LogEvent,
  NewEvent,
  ReadOptions,
  VerifyResult,
} from '../model/types.ts';

/**
 * Options of {@link openLog}.
 */
export interface OpenLogOptions {
  /** The store directory of the embedded LMDB engine; created when missing. Give this or `engine`. */
  path?: string;
  /**
   * Another engine instead of LMDB: `memoryEngine()`, or `postgresEngine(...)` from
   * `coherence/postgres`. Logs opened on one engine object share one store.
   */
  engine?: Engine;
  /**
   * 32 bytes, or 64 hex characters. Needed only to encrypt and decrypt; a wrong one fails here
   * with `WrongMasterKeyError`, never later with garbage.
   */
  masterKey?: Uint8Array | string;
  /** Lifetime of keys created implicitly by encrypting with an unknown key. Default: no expiry. */
  keyTtl?: Duration;
  /** What readers see in place of a value whose key is gone. Default: `null`. */
  redact?: (context: { aggregate: Identity; path: string; key: Identity }) => unknown;
  /** Where `timestamp` defaults and key expiry come from; inject one in tests. Default `() => new Date()`. */
  clock?: () => Date;
  /**
   * Shred each key at its `expiresAt` by timer in this process (timers do not keep the process
   * alive; keys created by other processes are picked up within a minute). Default false.
   */
  autoExpire?: boolean;
  /** Largest encoded event, in bytes. Default 1 MiB. */
  maxEventBytes?: number;
  /**
   * Schema versions of aggregate kinds. Each action records its kind's version when appended (1
   * for a kind without one); every reader but `read({ raw: true })` and `verify` sees actions
   * lifted to the current version, `upcasters[i]` lifting version `i + 1` to `i + 2` in order,
   * after decryption. An action newer than this log's schema is an `UnsupportedFormatError`.
   */
  schemas?: { [kind: string]: KindSchema };
  /**
   * Snapshot aggregate states: `state()` (and the command service) starts from the latest
   * snapshot and folds only what came after. A snapshot is written when a `state()` has folded
   * `every` actions or more past the latest one; it is sealed under the keys of the encrypted
   * values in it, removed in the transaction of any effect that affects the aggregate, and
   * unused once the kind's schema version or upcasters change. Default: no snapshots.
   */
  snapshots?: { every: number };
}

/**
 * An open coherence log. Obtain one with {@link openLog}; several processes may have the same
 * store open at once, and every guarantee holds across them.
 */
export interface Log {
  /** The key ring: create, inspect, shred and expire the keys that encrypt values. */
  readonly keys: Keys;

  /**
   * Appends a batch, all or nothing, if nothing stored after `options.base` (and not in
   * `options.resolved`) conflicts with it. An action conflicts with every later action on the
   * same aggregate and every later effect that affects that aggregate; every such conflict of
   * the batch is reported at once, with both sides, and nothing is written.
   *
   * @returns `ok` with the stored events and their seqs; `conflict` with every conflict and the
   *   events that raised none; `invalid-base` when `base` is beyond the head; with an
   *   `idempotencyKey` seen before, `duplicate` with the events written under it then.
   * @throws InvalidEventError naming the event (`index`) and the place in it (`path`).
   * @throws InvalidArgumentError for bad options.
   * @throws LogClosedError after `close()`.
   * @example
   * const { head } = await log.state(['book', 'Neuromancer']);
   * const result = await log.append([{ source: 'web', action: {
   *   reason: 'restock', actor: ['user', 'alice'], aggregate: ['book', 'Neuromancer'],
   *   patch: [{ op: 'replace', path: '/stock', value: 5 }] } }], { base: head });
   * if (result.status === 'conflict') for (const c of result.conflicts) console.log(c.theirs);
   */
  append(events: NewEvent[], options: AppendOptions & { idempotencyKey?: undefined }): Promise<AppendOutcome>;
  append(events: NewEvent[], options: AppendOptions): Promise<AppendResult>;

  /**
   * The highest seq in the log, 0 when empty.
   * @throws LogClosedError after `close()`.
   * @example
   * const base = await log.head();
   */
  head(): Promise<number>;

  /**
   * The event at `seq`, or undefined when there is none.
   * @throws InvalidArgumentError when `seq` is not a positive integer.
   * @throws LogClosedError after `close()`.
   * @example
   * const first = await log.get(1);
   */
  get(seq: number): Promise<LogEvent | undefined>;

  /**
   * Streams events in ascending seq from `from`, filtered by aggregates and kinds, with the
   * actions an effect at or after `from` makes a reader replay (see {@link ReadOptions}).
   * Events are decoded one at a time: memory stays flat over any length of log.
   * @throws InvalidArgumentError for bad options.
   * @throws LogClosedError after `close()`.
   * @example
   * for await (const event of log.read({ from: 100, kinds: ['book'] })) console.log(event.seq);
   */
  read(options?: ReadOptions): AsyncIterable<LogEvent>;

  /**
   * What an append on `aggregate` based on `base` would conflict with, ascending.
   * @throws InvalidArgumentError for a bad base or identity.
   * @throws LogClosedError after `close()`.
   * @example
   * const theirs = await log.conflicts(base, ['book', 'Neuromancer']);
   */
  conflicts(base: number, aggregate: Identity): Promise<LogEvent[]>;

  /**
   * The aggregate's state, the fold of its actions' patches from `{}`, and the head it was read
   * at, which is the natural `base` of the caller's next append. A patch that cannot be applied
   * (a failing `test`, an unresolvable path) leaves the state as it was, as RFC 6902 asks.
   * @throws InvalidArgumentError for a bad identity.
   * @throws LogClosedError after `close()`.
   * @example
   * const { state, head } = await log.state(['book', 'Neuromancer']);
   */
  state(aggregate: Identity): Promise<{ state: unknown; head: number }>;

  /**
   * Checks the hash chain from the first event and that every index agrees with the events,
   * from one snapshot (appends made meanwhile are left for the next run). `onProgress` is called
   * every 10,000 events with the seq reached and the head being verified.
   * @returns `{ ok: true, events }`, or `{ ok: false, seq, reason }` naming the first bad seq.
   * @throws LogClosedError after `close()`.
   * @example
   * const result = await log.verify();
   * if (!result.ok) console.error(`corrupt at ${result.seq}: ${result.reason}`);
   */
  verify(options?: { onProgress?: (seq: number, head: number) => void }): Promise<VerifyResult>;

  /**
   * A projection: a read model stored next to the log under `name`, with its own state per
   * aggregate and its own position. Creating the object reads nothing; `catchUp` does the work.
   * @throws InvalidArgumentError for a bad name or options.
   * @example
   * const receipts = log.projection('receipts', { kinds: ['receipt'] });
   * await receipts.catchUp();
   * console.log(await receipts.get(['receipt', 7]));
   */
  projection<State = unknown>(name: string, options?: ProjectionOptions<State>): Projection<State>;

  /**
   * What the store holds: events, aggregates, live and destroyed keys, file size, and every
   * projection, process manager and notifier with its position and lag (and the rejections
   * recorded, the dead letters held). Reads indexes and small records only, never the events.
   * @throws LogClosedError after `close()`.
   * @example
   * const { events, projections, processManagers, notifiers } = await log.stats();
   */
  stats(): Promise<LogStats>;

  /**
   * Rewrites the store without free pages, so no copy of destroyed key material (raw or
   * wrapped) or of freed pages remains in its files. Needs the store to itself; a crash in the
   * middle leaves the old store intact. `onProgress` gets the entries copied and the total.
   * @throws StoreInUseError while another process has the store open.
   * @throws LogClosedError after `close()`.
   * @example
   * await log.keys.shred(['user', 'alice']);
   * await log.compact();
   */
  compact(options?: { onProgress?: (copied: number, total: number) => void }): Promise<void>;

  /**
   * Waits for pending appends, then closes the store. Later calls throw `LogClosedError`;
   * closing twice is harmless.
   * @example
   * await log.close();
   */
  close(): Promise<void>;
}
