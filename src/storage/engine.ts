/**
 * The storage contract: what the log needs from a store, and nothing about how a store keeps it.
 * Types only. Every engine (lmdb/, memory/, postgres/) implements {@link Storage}; the log,
 * the key ring and the projections see nothing else, so every rule of the log is written once,
 * above this line, and holds on every engine.
 *
 * What crosses the contract is opaque bytes and identities: an event is a `record` (its layout
 * and hash chain belong to log/record.ts) with the few facts an engine indexes it by; a key is a
 * wrapped key record; a projection's state is whatever bytes the projector hands over.
 *
 * The log's events never change once written, and every seq up to a head another reader saw is
 * committed (one writer at a time, seqs without gaps). So reads need no snapshot to agree with
 * each other: a reader that bounds what it reads by a head it read earlier sees one consistent
 * log. What does change (key records, projection states) is read as it is now.
 *
 * Writes are one call, {@link Storage.write}: the engine reads the {@link WriteView} the
 * request asks for inside its transaction, hands it to the log's `decide` (synchronous, pure:
 * the conflict rules, the chain, the key checks live there), and writes the rows it returns in
 * the same transaction. Engines whose transactions are synchronous (LMDB) run all of it in one
 * callback; engines that must await (PostgreSQL) prefetch the view, then decide, then write.
 */
import type { Identity } from '../model/types.ts';

/** An engine's kind, as `Engine.kind` shows it. */
export type EngineKind = 'lmdb' | 'memory' | 'postgres';

/** What a stored event is indexed by, next to its record. */
export type EventRow =
  | {
      type: 'action';
      seq: number;
      record: Uint8Array;
      aggregate: Identity;
      /** Each links this action to its aggregate for effects on that trigger. */
      triggers: readonly Identity[];
    }
  | {
      type: 'effect';
      seq: number;
      record: Uint8Array;
      trigger: Identity;
      /**
       * The aggregates it affects, worked out by the log when it was written, in first-link
       * order. Their snapshots are removed (overwritten first) in the same transaction.
       */
      affected: readonly Identity[];
    };

/** A key record to store in place of the current one (or as the first). */
export interface KeyRow {
  key: Identity;
  record: Uint8Array;
  /** When the key expires, while it is live and has an expiry (the expiry index); else null. */
  expiresAt: number | null;
  /** The expiry indexed for the key until now (null: none), so the engine can drop that entry. */
  indexedExpiresAt: number | null;
}

/** What a write needs to read before it decides. */
export interface WriteRequest {
  /** Conflicts are the events after this seq. */
  base: number;
  /** Aggregates whose actions and affecting effects after `base` the decision needs. */
  aggregates: readonly Identity[];
  /** Also hand over the records of those events (the disjoint-paths merge reads their patches). */
  conflictRecords: boolean;
  /** Triggers whose linked aggregates the decision needs (the effects of the batch). */
  triggers: readonly Identity[];
  /** Key records the decision needs. */
  keys: readonly Identity[];
  /** An idempotency key to look up. */
  idempotencyKey?: string;
}

/** What {@link Storage.keyRecords} reads. */
export interface KeyRecords {
  /** The record of each key asked for, in order; undefined where there is none. */
  records: (Uint8Array | undefined)[];
  lastEffect: number;
}

/** What an engine read for a write, from inside its transaction. */
export interface WriteView {
  /** The highest seq, 0 when the log is empty. */
  readonly head: number;
  /** The record at `head`, undefined when the log is empty. */
  readonly last: Uint8Array | undefined;
  /** Seqs after `base` of actions on `aggregate` and of effects affecting it, each ascending. */
  conflicting(aggregate: Identity): { actions: readonly number[]; effects: readonly number[] };
  /** The record of a seq `conflicting` returned (with `conflictRecords`). */
  record(seq: number): Uint8Array | undefined;
  /** Aggregates with an action linked to `trigger`, each once, in first-link order. */
  linked(trigger: Identity): readonly Identity[];
  /** The stored record of a requested key. */
  key(key: Identity): Uint8Array | undefined;
  /**
   * The seq of the newest effect, 0 when there is none (see {@link Storage.keyRecords}), for a
   * request with keys.
   */
  lastEffect(): number;
  /** The seqs the requested idempotency key wrote, when it was seen before. */
  readonly idempotent: IdempotentBatch | undefined;
}

/** The seqs a batch wrote under an idempotency key: `first` to `last`, inclusive. */
export interface IdempotentBatch {
  first: number;
  last: number;
}

/** What `decide` tells the engine to write. */
export interface WriteDecision<Result> {
  /** What `write` resolves to once the transaction is committed. */
  result: Result;
  /** Events to append: seqs `head + 1` onwards without gaps. */
  events?: readonly EventRow[];
  /** Key records to store. A replaced record is overwritten before it is freed where the engine can. */
  keys?: readonly KeyRow[];
  /** Records the batch under its idempotency key, in the same transaction. */
  idempotency?: { key: string } & IdempotentBatch;
}

/** A change to one state of a consumer. */
export interface StateChange {
  aggregate: Identity;
  /** The new state, or undefined to remove it. */
  value: Uint8Array | undefined;
  /** The old state may hold what an effect took away: overwrite it before it is freed. */
  wipe: boolean;
}

/**
 * What one event implies for the indexes, for `verify`: an action is indexed under its aggregate
 * and each trigger; an effect affects the aggregates linked to its trigger before it.
 */
export type IndexFacts = (
  | { type: 'action'; aggregate: Identity; triggers: readonly Identity[] }
  | { type: 'effect'; trigger: Identity }
) & {
  /** The first event of a batch appended with an idempotency key: the key, and the batch's last seq. */
  idempotency?: { key: string; last: number };
};

/** What the log hands `Storage.verify`. */
export interface VerifyCheck {
  inspect(seq: number, record: Uint8Array): IndexFacts;
  factsOf(seq: number, record: Uint8Array): IndexFacts | undefined;
  onProgress?: (seq: number) => void;
}

/** What an engine can tell about its size and contents without reading every event. */
export interface StorageStats {
  /** Aggregates with at least one action. */
  aggregates: number;
  /** Bytes the store takes, free space included until `compact()`. */
  bytes: number;
}

/**
 * One open connection to a store. Several may be open on one store at once (processes on one
 * machine for LMDB, any number of machines for PostgreSQL, logs on one object for memory) and
 * every guarantee of the log holds across them.
 */
export interface Storage {
  readonly kind: EngineKind;
  /** Where the store is, for messages and stats (a path, a database name); never a secret. */
  readonly location: string;

  /** The highest seq, 0 when empty, from the latest commit of any connection. */
  head(): Promise<number>;
  /** The records of `seqs`, in the same order; undefined where there is none. */
  records(seqs: readonly number[]): Promise<(Uint8Array | undefined)[]>;
  /** Up to `limit` records with `from <= seq <= to`, ascending. */
  scan(from: number, to: number, limit: number): Promise<{ seq: number; record: Uint8Array }[]>;
  /** Up to `limit` seqs of actions on `aggregate` with `from <= seq < to`, ascending. */
  actionSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]>;
  /** Up to `limit` seqs of effects affecting `aggregate` with `from <= seq < to`, ascending. */
  effectSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]>;
  /** The aggregates each effect of `seqs` affects, as recorded when it was written. */
  affected(seqs: readonly number[]): Promise<(readonly Identity[] | undefined)[]>;
  /** Every effect with `seq >= from`, with the aggregates it affects, ascending. */
  effectsFrom(from: number): Promise<{ seq: number; affected: readonly Identity[] }[]>;

  /**
   * Reads what `request` asks for and calls `decide` with it, then writes what it returns, all in
   * one transaction that no other writer of the store can interleave with. Concurrent writes may
   * share one commit; each `decide` sees the writes of those before it. If `decide` throws,
   * nothing of it is written and `write` rejects with that error.
   */
  write<Result>(request: WriteRequest, decide: (view: WriteView) => WriteDecision<Result>): Promise<Result>;

  /** The latest snapshot of `aggregate`, if it was taken at a seq <= `upTo`. */
  snapshot(aggregate: Identity, upTo: number): Promise<{ seq: number; value: Uint8Array } | undefined>;
  /**
   * Stores a snapshot of `aggregate` as of `seq` in place of an older one, in one transaction,
   * unless an effect affecting the aggregate was written after `seq` (the snapshot would hold
   * what it took away) or a newer snapshot is there. Returns whether it did.
   */
  putSnapshot(aggregate: Identity, seq: number, value: Uint8Array): Promise<boolean>;

  /** Store-wide values (format, the key-encryption salt and check). */
  meta(name: string): Promise<Uint8Array | undefined>;
  /** Stores each value whose name has none yet, atomically; returns what is stored for every name. */
  initMeta(values: Readonly<Record<string, Uint8Array>>): Promise<Record<string, Uint8Array>>;

  /**
   * The records of `keys` as they are now (another connection's shred is seen once it returned),
   * and the seq of the newest effect (0 when there is none), read at the same moment. A key
   * record is written when the key is created and when it is destroyed, and a destroy is written
   * in the transaction of its effect: so a live record read together with `lastEffect` is still
   * the stored one for as long as the newest effect stays the same.
   */
  keyRecords(keys: readonly Identity[]): Promise<KeyRecords>;
  /** Every key record, by kind then id. */
  allKeys(): AsyncIterable<{ key: Identity; record: Uint8Array }>;
  /** Live keys with an expiry at or before `at`, soonest first; with `at` undefined, only the soonest one. */
  expiringKeys(at: number | undefined): Promise<{ key: Identity; expiresAt: number }[]>;

  /** A consumer's (projection's) own record: its position and definition, as it encoded them. */
  consumerMeta(name: string): Promise<Uint8Array | undefined>;
  /** Every consumer, by name, with its record. */
  consumers(): Promise<{ name: string; meta: Uint8Array }[]>;
  /** The states of `aggregates` held by consumer `name`; undefined where there is none. */
  states(name: string, aggregates: readonly Identity[]): Promise<(Uint8Array | undefined)[]>;
  /** Every state of consumer `name` (of one kind when given), by kind then id. */
  allStates(name: string, kind?: string): AsyncIterable<{ aggregate: Identity; value: Uint8Array }>;
  /**
   * Applies `changes` and stores `meta` in one transaction, if the consumer's record is still
   * `expected` byte for byte (undefined: none yet). Returns whether it did.
   */
  commitStates(name: string, expected: Uint8Array | undefined, meta: Uint8Array, changes: readonly StateChange[]): Promise<boolean>;
  /** Removes the consumer's record and every state of it. */
  dropConsumer(name: string): Promise<void>;

  /**
   * For `verify`: walks every event with `seq <= head`, ascending, handing each record to
   * `check.inspect` (the log checks the chain there and says which index entries the event
   * implies), and checks that the engine's indexes hold exactly those entries, both ways: none
   * missing or wrong, none that no event accounts for (`check.factsOf` explains an entry's event
   * without the chain; undefined when its record cannot be decoded). An error `inspect` throws
   * ends the walk and rejects with it. `check.onProgress` gets the seq reached every few thousand
   * events. Appends made meanwhile are left for the next run.
   * @returns the first problem found (the lowest seq it can name), or undefined.
   */
  verify(head: number, check: VerifyCheck): Promise<{ seq: number; reason: string } | undefined>;

  /** Counts for `stats()`. */
  stats(): Promise<StorageStats>;
  /**
   * Rewrites the store so that nothing deleted or overwritten remains in its files or tables
   * (see each engine for what that reaches). Writes of this connection wait meanwhile.
   */
  compact(onProgress?: (done: number, total: number) => void): Promise<void>;
  /**
   * Calls `listener` soon after another connection commits (within 100 ms), until the returned
   * function is called. Commits of this connection are the caller's to announce.
   */
  watch(listener: () => void): () => void;
  /** Waits for pending writes, then closes the connection. */
  close(): Promise<void>;
}

/** An engine: opens connections to its store. */
export interface StorageEngine {
  readonly kind: EngineKind;
  open(): Promise<Storage>;
}
