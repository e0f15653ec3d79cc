/**
 * The LMDB engine: the embedded default, one directory shared by the processes of one machine.
 * Writes run inside one lmdb-js write transaction callback (synchronous; concurrent ones of this
 * process share one commit and one sync); LMDB's lock serializes them across processes.
 */
import { mkdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Key } from 'lmdb';
import { sameBytes } from '../../model/bytes.ts';
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';
import type {
  EventRow,
  IdempotentBatch,
  KeyRecords,
  KeyRow,
  StateChange,
  Storage,
  StorageEngine,
  StorageStats,
  VerifyCheck,
  WriteDecision,
  WriteRequest,
  WriteView,
} from '../engine.ts';
import { assertAlone, compactStore, otherProcesses } from './compact.ts';
import { asKey, CONSUMER_META, CONSUMER_STATE, EMPTY, indexedSeqs, indexKey, lastSeq, MAX_SEQ, openStore, putLatest, putLink, triggerLinks, type Store } from './layout.ts';
import { KnownLinks } from './known-links.ts';
import { verifyIndexes } from './verify-indexes.ts';

/** How often a connection looks again whether other processes have the store open. */
const ALONE_CHECK_MS = 1000;
/** How often `watch` looks at the head for other processes' commits. */
const WATCH_POLL_MS = 50;

/**
 * The LMDB engine of the store directory `path` (created when missing).
 *
 * @example
 * const storage = await lmdbEngine('./data/shop').open();
 */
export function lmdbEngine(path: string): StorageEngine {
  return {
    kind: 'lmdb',
    async open() {
      mkdirSync(path, { recursive: true });
      const directory = realpathSync(path);
      // Another connection of this process may be writing to the store: open between its transactions.
      await idle(directory);
      return new LmdbStorage(path, directory, openStore(path));
    },
  };
}

/** Overwrites a record with zeros of its own length, so LMDB rewrites it in place on this
 * transaction's copy of the page and the shorter record that follows leaves zeros, not the old
 * bytes, in the page's unused space (which compaction would copy verbatim). */
function wipe(db: Store['keys'], key: Key): void {
  const old = db.get(key);
  if (old !== undefined) db.put(key, Buffer.alloc(old.length));
}

/**
 * The head as this connection last saw it in a write (the last event it wrote, or the head its
 * view found), kept to find the head without a cursor.
 */
interface Tail {
  seq: number;
  record: Uint8Array;
}

/** Asynchronous transactions in flight, by store directory, in this process. */
const inFlight = new Map<string, number>();
/** Who waits for a directory to have no asynchronous transaction in flight. */
const idleWaiters = new Map<string, (() => void)[]>();

/**
 * Resolves at a moment when this process has no asynchronous transaction in flight on
 * `directory`, so that what follows synchronously may begin a write transaction there: opening
 * a store does (lmdb-js opens its databases in one), and lmdb-js's write thread, holding the
 * write lock for a transaction in flight, waits for this very thread to run its callbacks.
 */
async function idle(directory: string): Promise<void> {
  while ((inFlight.get(directory) ?? 0) > 0) {
    await new Promise<void>((resolve) => {
      const waiting = idleWaiters.get(directory);
      if (waiting === undefined) idleWaiters.set(directory, [resolve]);
      else waiting.push(resolve);
    });
  }
}

/** What a queued write asks for: its request and the log's decision. */
interface Work {
  request: WriteRequest;
  decide: (view: WriteView) => WriteDecision<unknown>;
}

interface QueuedWrite {
  /** Dropped once applied, so that what the decision holds (the encoded batch) need not outlive it while the commit runs. */
  request: Work['request'] | undefined;
  decide: Work['decide'] | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Once its transaction callback ran it: whether it threw, and what it returned or threw. */
  threw: boolean;
  outcome: unknown;
}

const NOTHING: { actions: readonly number[]; effects: readonly number[] } = { actions: [], effects: [] };

/** The view of one write, read lazily: everything runs inside the synchronous transaction. */
class LmdbView implements WriteView {
  readonly head: number;
  readonly last: Uint8Array | undefined;
  readonly #store: Store;
  readonly #request: WriteRequest;

  constructor(store: Store, request: WriteRequest, tail: Tail | undefined, tailChecked: boolean) {
    this.#store = store;
    this.#request = request;
    // The head this connection saw last is still the head if it is stored as seen and nothing
    // follows it (another process, or a transaction of ours that failed, would show). Within one
    // transaction callback, once checked, it stays so: only this callback writes meanwhile.
    if (tail !== undefined && (tailChecked || (!store.events.doesExist(tail.seq + 1) && sameBytes(store.events.getBinaryFast(tail.seq), tail.record)))) {
      this.head = tail.seq;
      this.last = tail.record;
    } else {
      this.head = lastSeq(store);
      this.last = this.head === 0 ? undefined : store.events.getBinary(this.head);
    }
  }

  conflicting(aggregate: Identity): { actions: readonly number[]; effects: readonly number[] } {
    const from = this.#request.base + 1;
    if (from > this.head) return NOTHING;
    // One lookup says whether anything touched the aggregate after the base; only then the scans.
    const latest = this.#store.latest.getBinaryFast(asKey(aggregate));
    if (latest === undefined ? from >= this.#store.latestFrom : latest.readDoubleBE(0) < from) return NOTHING;
    return {
      actions: [...indexedSeqs(this.#store.byAggregate, aggregate, from)],
      effects: [...indexedSeqs(this.#store.effectsByAggregate, aggregate, from)],
    };
  }

  record(seq: number): Uint8Array | undefined {
    return this.#store.events.getBinary(seq);
  }

  linked(trigger: Identity): readonly Identity[] {
    return linkedAggregates(this.#store, trigger, MAX_SEQ);
  }

  key(key: Identity): Uint8Array | undefined {
    return this.#store.keys.get(asKey(key));
  }

  lastEffect(): number {
    return lastEffect(this.#store);
  }

  get idempotent(): IdempotentBatch | undefined {
    const key = this.#request.idempotencyKey;
    if (key === undefined) return undefined;
    const stored = this.#store.idempotency.get(key);
    if (stored === undefined) return undefined;
    const [first, last] = packr.unpack(stored) as [number, number];
    return { first, last };
  }
}

/** The seq of the newest effect, 0 when there is none. */
function lastEffect(store: Store): number {
  for (const seq of store.effects.getKeys({ reverse: true, limit: 1 })) return seq;
  return 0;
}

/** Every aggregate with an action linked to `trigger` before `seq`, each once, in first-link order. */
function linkedAggregates(store: Store, trigger: Identity, seq: number): Identity[] {
  const links = [...triggerLinks(store, trigger)].filter((link) => link.seq < seq);
  return links.sort((x, y) => x.seq - y.seq).map((link) => link.aggregate);
}

/**
 * Writes the rows of events with their index entries. A trigger link `known` holds is not looked
 * up; the others are (and written where missing), and go into `linked`, for `known` once the
 * transaction has committed.
 */
function writeEvents(store: Store, rows: readonly EventRow[], known: KnownLinks, linked: Identity[]): void {
  for (const row of rows) {
    store.events.put(row.seq, row.record as Buffer);
    if (row.type === 'action') {
      store.byAggregate.put(indexKey(row.aggregate, row.seq), EMPTY);
      putLatest(store, row.aggregate, row.seq);
      for (const trigger of row.triggers) {
        if (known.has(trigger, row.aggregate)) continue;
        putLink(store, trigger, row.aggregate, row.seq);
        linked.push(trigger, row.aggregate);
      }
    } else {
      store.effects.put(row.seq, packr.pack(row.affected));
      for (const aggregate of row.affected) {
        store.effectsByAggregate.put(indexKey(aggregate, row.seq), EMPTY);
        putLatest(store, aggregate, row.seq);
        const snapshot = asKey(aggregate);
        wipe(store.snapshots, snapshot);
        store.snapshots.remove(snapshot);
      }
    }
  }
}

function writeKeys(store: Store, rows: readonly KeyRow[]): void {
  for (const { key, record, expiresAt, indexedExpiresAt } of rows) {
    const id = asKey(key);
    wipe(store.keys, id);
    store.keys.put(id, record as Buffer);
    if (indexedExpiresAt !== null && indexedExpiresAt !== expiresAt) store.keyExpiry.remove([indexedExpiresAt, key[0], key[1]]);
    if (expiresAt !== null) store.keyExpiry.put([expiresAt, key[0], key[1]], EMPTY);
  }
}

class LmdbStorage implements Storage {
  readonly kind = 'lmdb' as const;
  readonly location: string;
  #store: Store;
  /** Set while compact() swaps the store file; every operation waits for it. */
  #compaction: Promise<void> | undefined;
  readonly #watchers = new Set<() => void>();
  #watch: { timer: NodeJS.Timeout; head: number } | undefined;
  #tail: Tail | undefined;
  /** Writes asked for in this turn, not yet handed to lmdb-js. */
  #queued: QueuedWrite[] = [];
  #aloneAt: { at: number; alone: boolean } | undefined;
  readonly #links = new KnownLinks();

  /** The store directory's real path: one lmdb-js environment per directory in a process. */
  readonly #directory: string;

  /** `directory` is the real path of `path`, resolved once by `open`. */
  constructor(path: string, directory: string, store: Store) {
    this.location = path;
    this.#directory = directory;
    this.#store = store;
  }

  /** The store, once a compaction in progress is done. */
  async #ready(): Promise<Store> {
    while (this.#compaction !== undefined) await this.#compaction.catch(() => {});
    return this.#store;
  }

  /**
   * Like #ready, and moves this process's read snapshot to the latest commit: lmdb-js renews it
   * once per event turn, which can miss a commit another process made within the turn.
   */
  async #fresh(): Promise<Store> {
    const store = await this.#ready();
    store.root.resetReadTxn();
    return store;
  }

  async head(): Promise<number> {
    return lastSeq(await this.#fresh());
  }

  async records(seqs: readonly number[]): Promise<(Uint8Array | undefined)[]> {
    const store = await this.#ready();
    return seqs.map((seq) => store.events.getBinary(seq));
  }

  async scan(from: number, to: number, limit: number): Promise<{ seq: number; record: Uint8Array }[]> {
    const store = await this.#ready();
    const page: { seq: number; record: Uint8Array }[] = [];
    for (const { key, value } of store.events.getRange({ start: from, end: to + 1, limit })) page.push({ seq: key, record: value });
    return page;
  }

  async actionSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    return this.#seqs((await this.#ready()).byAggregate, aggregate, from, to, limit);
  }

  async effectSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    return this.#seqs((await this.#ready()).effectsByAggregate, aggregate, from, to, limit);
  }

  #seqs(index: Store['byAggregate'], aggregate: Identity, from: number, to: number, limit: number): number[] {
    const seqs: number[] = [];
    for (const key of index.getKeys({ start: [aggregate[0], aggregate[1], from], end: [aggregate[0], aggregate[1], to], limit })) {
      seqs.push((key as [string, Identity[1], number])[2]);
    }
    return seqs;
  }

  async affected(seqs: readonly number[]): Promise<(readonly Identity[] | undefined)[]> {
    const store = await this.#ready();
    return seqs.map((seq) => {
      const stored = store.effects.get(seq);
      return stored === undefined ? undefined : (packr.unpack(stored) as Identity[]);
    });
  }

  async effectsFrom(from: number): Promise<{ seq: number; affected: readonly Identity[] }[]> {
    const store = await this.#ready();
    const effects: { seq: number; affected: readonly Identity[] }[] = [];
    for (const { key, value } of store.effects.getRange({ start: from })) effects.push({ seq: key, affected: packr.unpack(value) as Identity[] });
    return effects;
  }

  /**
   * Writes asked for within one turn of the event loop are handed to lmdb-js together, as one
   * transaction callback with one commit and one sync, which runs them in the order asked (a
   * write whose decision throws writes nothing and is refused; the others go on). A write alone
   * in its turn, with no transaction on the store in flight in this process and no other process
   * on the store (looked up at most once a second), commits synchronously instead
   * (`transactionSync`): one durable append at a time then costs one sync commit, without
   * lmdb-js's hand-over to its write thread. The event loop waits for that commit. With another
   * process about, writes go the asynchronous way, so the event loop does not wait on that
   * process's transactions (except one that opened the store within the last second, for one
   * commit at most).
   */
  write<Result>(request: WriteRequest, decide: (view: WriteView) => WriteDecision<Result>): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const queued: QueuedWrite = { request, decide, resolve: resolve as (value: unknown) => void, reject, threw: false, outcome: undefined };
      this.#queued.push(queued);
      if (this.#queued.length === 1) setImmediate(() => void this.#flush());
    });
  }

  /** Hands the writes of a turn to lmdb-js: together in one transaction, or a lone one synchronously. */
  async #flush(): Promise<void> {
    let store: Store;
    try {
      store = await this.#ready();
    } catch (error) {
      for (const queued of this.#queued.splice(0)) queued.reject(error);
      return;
    }
    const writes = this.#queued.splice(0);
    if (writes.length === 1 && (inFlight.get(this.#directory) ?? 0) === 0 && this.#alone(store)) {
      const [lone] = writes as [QueuedWrite];
      const { request, decide } = lone as Work;
      try {
        const linked: Identity[] = [];
        const result = store.root.transactionSync(() => this.#apply(store, request, decide, false, linked));
        this.#links.committed(linked);
        lone.resolve(result);
      } catch (error) {
        lone.reject(error);
      }
      return;
    }
    // One callback for the turn (lmdb-js would otherwise keep a callback, a promise and a
    // result per write); each write settles on its own outcome once the commit is done.
    const linked: Identity[] = [];
    this.#transaction(store, () => {
      // After a write that threw, the next one checks the tail again.
      let tailChecked = false;
      for (const queued of writes) {
        try {
          const { request, decide } = queued as Work;
          queued.outcome = this.#apply(store, request, decide, tailChecked, linked);
          tailChecked = true;
        } catch (error) {
          queued.threw = true;
          queued.outcome = error;
          tailChecked = false;
        }
        queued.request = undefined;
        queued.decide = undefined;
      }
    }).then(
      () => {
        this.#links.committed(linked);
        for (const queued of writes) {
          if (queued.threw) queued.reject(queued.outcome);
          else queued.resolve(queued.outcome);
        }
      },
      (error: unknown) => {
        for (const queued of writes) queued.reject(error);
      },
    );
  }

  /**
   * An lmdb-js asynchronous transaction, counted per store directory (connections of one process
   * on one directory share lmdb-js's environment): a synchronous one must never start while one
   * is in flight, since its callback waits for this thread, which would then be blocked.
   */
  #transaction<T>(store: Store, work: () => T): Promise<T> {
    inFlight.set(this.#directory, (inFlight.get(this.#directory) ?? 0) + 1);
    return store.root.transaction(work).finally(() => {
      const left = (inFlight.get(this.#directory) ?? 1) - 1;
      if (left > 0) {
        inFlight.set(this.#directory, left);
        return;
      }
      inFlight.delete(this.#directory);
      const waiting = idleWaiters.get(this.#directory);
      idleWaiters.delete(this.#directory);
      for (const resolve of waiting ?? []) resolve();
    });
  }

  /** Whether no other process has the store open, as of the last look (at most a second old). */
  #alone(store: Store): boolean {
    const now = Date.now();
    if (this.#aloneAt === undefined || now - this.#aloneAt.at > ALONE_CHECK_MS) this.#aloneAt = { at: now, alone: otherProcesses(store).length === 0 };
    return this.#aloneAt.alone;
  }

  /** One write inside its transaction: the view, the log's decision, the rows it returns; the trigger links it looked up go into `linked`. */
  #apply<Result>(store: Store, request: WriteRequest, decide: (view: WriteView) => WriteDecision<Result>, tailChecked: boolean, linked: Identity[]): Result {
    const view = new LmdbView(store, request, this.#tail, tailChecked);
    if (view.last !== undefined && view.last !== this.#tail?.record) this.#tail = { seq: view.head, record: view.last };
    const decision = decide(view);
    // Everything that can throw ran in decide: from here on the writes go in whole.
    if (decision.events !== undefined && decision.events.length > 0) {
      writeEvents(store, decision.events, this.#links, linked);
      const last = decision.events[decision.events.length - 1] as EventRow;
      this.#tail = { seq: last.seq, record: last.record };
    }
    if (decision.keys !== undefined) writeKeys(store, decision.keys);
    if (decision.idempotency !== undefined) {
      const { key, first, last } = decision.idempotency;
      store.idempotency.put(key, packr.pack([first, last]));
    }
    return decision.result;
  }

  async snapshot(aggregate: Identity, upTo: number): Promise<{ seq: number; value: Uint8Array } | undefined> {
    const stored = (await this.#fresh()).snapshots.get(asKey(aggregate));
    if (stored === undefined) return undefined;
    const [seq, value] = packr.unpack(stored) as [number, Uint8Array];
    return seq <= upTo ? { seq, value } : undefined;
  }

  async putSnapshot(aggregate: Identity, seq: number, value: Uint8Array): Promise<boolean> {
    const store = await this.#ready();
    const key = asKey(aggregate);
    return this.#transaction(store, () => {
      for (const _ of indexedSeqs(store.effectsByAggregate, aggregate, seq + 1)) return false;
      const stored = store.snapshots.get(key);
      if (stored !== undefined && (packr.unpack(stored) as [number])[0] >= seq) return false;
      wipe(store.snapshots, key);
      store.snapshots.put(key, packr.pack([seq, value]));
      return true;
    });
  }

  async meta(name: string): Promise<Uint8Array | undefined> {
    return (await this.#fresh()).meta.get(name);
  }

  async initMeta(values: Readonly<Record<string, Uint8Array>>): Promise<Record<string, Uint8Array>> {
    const store = await this.#fresh();
    // Asynchronous, and counted: another connection of this process may have transactions in flight.
    return this.#transaction(store, () => {
      const stored: Record<string, Uint8Array> = {};
      for (const [name, value] of Object.entries(values)) {
        let current = store.meta.get(name);
        if (current === undefined) store.meta.put(name, (current = Buffer.from(value)));
        stored[name] = current;
      }
      return stored;
    });
  }

  async keyRecords(keys: readonly Identity[]): Promise<KeyRecords> {
    const store = await this.#fresh();
    // One read transaction: the records and the newest effect are of the same moment.
    return { records: keys.map((key) => store.keys.get(asKey(key))), lastEffect: lastEffect(store) };
  }

  async *allKeys(): AsyncIterable<{ key: Identity; record: Uint8Array }> {
    const store = await this.#fresh();
    for (const { key, value } of store.keys.getRange()) {
      const [kind, id] = key as [string, Identity[1]];
      yield { key: [kind, id], record: value };
    }
  }

  async expiringKeys(at: number | undefined): Promise<{ key: Identity; expiresAt: number }[]> {
    const store = await this.#fresh();
    const range = at === undefined ? { limit: 1 } : { end: [at, '\uffff'] };
    const due: { key: Identity; expiresAt: number }[] = [];
    for (const key of store.keyExpiry.getKeys(range)) {
      const [expiresAt, kind, id] = key as [number, string, Identity[1]];
      if (at === undefined || expiresAt <= at) due.push({ key: [kind, id], expiresAt });
    }
    return due;
  }

  async consumerMeta(name: string): Promise<Uint8Array | undefined> {
    return (await this.#fresh()).projections.get([name, CONSUMER_META]);
  }

  async consumers(): Promise<{ name: string; meta: Uint8Array }[]> {
    const store = await this.#fresh();
    const found: { name: string; meta: Uint8Array }[] = [];
    let start: Key = [];
    for (;;) {
      let entry: { key: Key; value: Buffer } | undefined;
      for (const next of store.projections.getRange({ start, limit: 1 })) entry = next;
      if (entry === undefined) return found;
      const [name, section] = entry.key as [string, number];
      if (section === CONSUMER_META) found.push({ name, meta: entry.value });
      // Jump past every entry of this name: one O(log n) lookup per consumer.
      start = [name, CONSUMER_STATE + 1];
    }
  }

  async states(name: string, aggregates: readonly Identity[]): Promise<(Uint8Array | undefined)[]> {
    const store = await this.#ready();
    return aggregates.map((aggregate) => store.projections.get([name, CONSUMER_STATE, aggregate[0], aggregate[1]]));
  }

  async *allStates(name: string, kind?: string): AsyncIterable<{ aggregate: Identity; value: Uint8Array }> {
    const store = await this.#fresh();
    const start = kind === undefined ? [name, CONSUMER_STATE] : [name, CONSUMER_STATE, kind];
    for (const { key, value } of store.projections.getRange({ start })) {
      const [owner, section, stateKind, id] = key as [string, number, string, Identity[1]];
      if (owner !== name || section !== CONSUMER_STATE || (kind !== undefined && stateKind !== kind)) return;
      yield { aggregate: [stateKind, id], value };
    }
  }

  async commitStates(name: string, expected: Uint8Array | undefined, meta: Uint8Array, changes: readonly StateChange[]): Promise<boolean> {
    const store = await this.#ready();
    return this.#transaction(store, () => {
      if (!sameBytes(store.projections.get([name, CONSUMER_META]), expected)) return false;
      for (const { aggregate, value, wipe: mustWipe } of changes) {
        const key: Key = [name, CONSUMER_STATE, aggregate[0], aggregate[1]];
        if (mustWipe) wipe(store.projections, key);
        if (value === undefined) store.projections.remove(key);
        else store.projections.put(key, value as Buffer);
      }
      store.projections.put([name, CONSUMER_META], meta as Buffer);
      return true;
    });
  }

  async dropConsumer(name: string): Promise<void> {
    const store = await this.#ready();
    await this.#transaction(store, () => {
      for (const key of store.projections.getKeys({ start: [name] })) {
        if ((key as unknown[])[0] !== name) break;
        store.projections.remove(key);
      }
    });
  }

  async verify(head: number, check: VerifyCheck): Promise<{ seq: number; reason: string } | undefined> {
    return verifyIndexes(await this.#fresh(), head, check, linkedAggregates);
  }

  async stats(): Promise<StorageStats> {
    const store = await this.#fresh();
    return { aggregates: countAggregates(store), bytes: statSync(join(this.location, 'data.mdb')).size };
  }

  async compact(onProgress?: (done: number, total: number) => void): Promise<void> {
    const store = await this.#fresh();
    assertAlone(store, this.location);
    const compaction = (async () => {
      await store.root.committed;
      try {
        await compactStore(store, this.location, onProgress);
      } finally {
        // Whether or not the copy went through, this connection carries on with the store on disk.
        await idle(this.#directory);
        this.#store = openStore(this.location);
        this.#compaction = undefined;
      }
    })();
    this.#compaction = compaction;
    await compaction;
  }

  watch(listener: () => void): () => void {
    this.#watchers.add(listener);
    if (this.#watch === undefined) {
      const watch = { head: lastSeq(this.#store), timer: setInterval(() => this.#poll(), WATCH_POLL_MS) };
      watch.timer.unref();
      this.#watch = watch;
    }
    return () => {
      this.#watchers.delete(listener);
      if (this.#watchers.size === 0 && this.#watch !== undefined) {
        clearInterval(this.#watch.timer);
        this.#watch = undefined;
      }
    };
  }

  /** One O(log n) lookup of the head: the log itself is never re-read to notice a commit. */
  #poll(): void {
    if (this.#watch === undefined || this.#compaction !== undefined) return;
    this.#store.root.resetReadTxn();
    const head = lastSeq(this.#store);
    if (head === this.#watch.head) return;
    this.#watch.head = head;
    for (const listener of this.#watchers) listener();
  }

  async close(): Promise<void> {
    const store = await this.#ready();
    if (this.#watch !== undefined) clearInterval(this.#watch.timer);
    this.#watch = undefined;
    this.#watchers.clear();
    await store.root.committed;
    await store.root.close();
  }
}

/** Counts distinct aggregates by jumping from one to the next in the index: O(aggregates log n). */
function countAggregates(store: Store): number {
  let count = 0;
  let start: Key | undefined;
  for (;;) {
    let next: Key | undefined;
    for (const key of store.byAggregate.getKeys(start === undefined ? { limit: 1 } : { start, limit: 1, exclusiveStart: true })) next = key;
    if (next === undefined) return count;
    const [kind, id] = next as [string, Identity[1]];
    count++;
    start = [kind, id, MAX_SEQ];
  }
}
