/**
 * The in-memory engine, for tests and prototypes: the same contract as LMDB and PostgreSQL, with
 * plain maps and sorted arrays. Logs opened on one engine object share its store while the object
 * lives, as processes share an LMDB directory; nothing survives the process.
 *
 * Writes are synchronous inside `write` (JavaScript runs one at a time), so a write is atomic and
 * serialized with every other by construction. Stored bytes are copied in and out, so no caller
 * can change what another reads.
 */
import { sameBytes } from '../../model/bytes.ts';
import type { Identity } from '../../model/types.ts';
import { identityKey } from '../../model/validate.ts';
import type {
  EventRow,
  IdempotentBatch,
  KeyRecords,
  KeyRow,
  StateChange,
  Storage,
  StorageStats,
  VerifyCheck,
  WriteDecision,
  WriteRequest,
  WriteView,
} from '../engine.ts';
import { toEngineHandle, type Engine } from '../registry.ts';

/** Commits are announced to watchers of other connections on a later turn, as a store would. */
const WATCH_DELAY_MS = 1;

interface Link {
  seq: number;
  aggregate: Identity;
}

interface Consumer {
  meta: Uint8Array;
  states: Map<string, { aggregate: Identity; value: Uint8Array }>;
}

/** One store, shared by every connection opened on the engine object. */
class MemoryStore {
  readonly events: Uint8Array[] = [];
  /** Seqs by aggregate (ascending, since seqs only grow). */
  readonly byAggregate = new Map<string, number[]>();
  readonly effectsByAggregate = new Map<string, number[]>();
  readonly byTrigger = new Map<string, Link[]>();
  readonly affected = new Map<number, readonly Identity[]>();
  /** The seq of the newest effect, 0 before the first. */
  lastEffect = 0;
  readonly aggregates = new Map<string, Identity>();
  readonly keys = new Map<string, { key: Identity; record: Uint8Array; expiresAt: number | null }>();
  readonly meta = new Map<string, Uint8Array>();
  readonly consumers = new Map<string, Consumer>();
  readonly idempotency = new Map<string, IdempotentBatch>();
  readonly snapshots = new Map<string, { seq: number; value: Uint8Array }>();
  readonly connections = new Set<MemoryStorage>();

  /** Tells every connection but `from` that something was committed. */
  announce(from: MemoryStorage): void {
    for (const connection of this.connections) if (connection !== from) connection.heard();
  }
}

const copy = (bytes: Uint8Array): Uint8Array => Uint8Array.from(bytes);
const copyIdentity = (identity: Identity): Identity => [identity[0], identity[1]];

/** Kind by UTF-8 bytes, then numeric ids (ascending) before string ids (by UTF-8 bytes): LMDB's key order. */
function compareIdentities(a: Identity, b: Identity): number {
  const kinds = Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]));
  if (kinds !== 0) return kinds;
  const [x, y] = [a[1], b[1]];
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  if (typeof x === 'number') return -1;
  if (typeof y === 'number') return 1;
  return Buffer.compare(Buffer.from(x), Buffer.from(y));
}

/** The index of the first element >= `value` in an ascending array. */
function lowerBound(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((sorted[mid] as number) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

function seqsIn(sorted: readonly number[] | undefined, from: number, to: number, limit: number): number[] {
  if (sorted === undefined) return [];
  const seqs: number[] = [];
  for (let i = lowerBound(sorted, from); i < sorted.length && seqs.length < limit; i++) {
    const seq = sorted[i] as number;
    if (seq >= to) break;
    seqs.push(seq);
  }
  return seqs;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function linkedAggregates(store: MemoryStore, trigger: Identity, before: number): Identity[] {
  const seen = new Map<string, Identity>();
  for (const { seq, aggregate } of store.byTrigger.get(identityKey(trigger)) ?? []) {
    if (seq >= before) break;
    const key = identityKey(aggregate);
    if (!seen.has(key)) seen.set(key, copyIdentity(aggregate));
  }
  return [...seen.values()];
}

class MemoryView implements WriteView {
  readonly head: number;
  readonly last: Uint8Array | undefined;
  readonly idempotent: IdempotentBatch | undefined;
  readonly #store: MemoryStore;
  readonly #base: number;

  constructor(store: MemoryStore, request: WriteRequest) {
    this.#store = store;
    this.#base = request.base;
    this.head = store.events.length;
    const last = store.events[this.head - 1];
    this.last = last === undefined ? undefined : copy(last);
    const batch = request.idempotencyKey === undefined ? undefined : store.idempotency.get(request.idempotencyKey);
    this.idempotent = batch === undefined ? undefined : { ...batch };
  }

  conflicting(aggregate: Identity): { actions: readonly number[]; effects: readonly number[] } {
    const key = identityKey(aggregate);
    const from = this.#base + 1;
    return {
      actions: seqsIn(this.#store.byAggregate.get(key), from, Infinity, Infinity),
      effects: seqsIn(this.#store.effectsByAggregate.get(key), from, Infinity, Infinity),
    };
  }

  record(seq: number): Uint8Array | undefined {
    const record = this.#store.events[seq - 1];
    return record === undefined ? undefined : copy(record);
  }

  linked(trigger: Identity): readonly Identity[] {
    return linkedAggregates(this.#store, trigger, Infinity);
  }

  key(key: Identity): Uint8Array | undefined {
    const stored = this.#store.keys.get(identityKey(key));
    return stored === undefined ? undefined : copy(stored.record);
  }

  lastEffect(): number {
    return this.#store.lastEffect;
  }
}

function writeEvents(store: MemoryStore, rows: readonly EventRow[]): void {
  for (const [i, row] of rows.entries()) {
    const expected = store.events.length + 1 + i;
    if (row.seq !== expected) throw new Error(`memory engine: expected seq ${expected}, got ${row.seq}`);
  }
  for (const row of rows) {
    store.events.push(copy(row.record));
    if (row.type === 'action') {
      const key = identityKey(row.aggregate);
      push(store.byAggregate, key, row.seq);
      if (!store.aggregates.has(key)) store.aggregates.set(key, copyIdentity(row.aggregate));
      for (const trigger of row.triggers) push(store.byTrigger, identityKey(trigger), { seq: row.seq, aggregate: copyIdentity(row.aggregate) });
    } else {
      store.affected.set(row.seq, row.affected.map(copyIdentity));
      store.lastEffect = row.seq;
      for (const aggregate of row.affected) {
        push(store.effectsByAggregate, identityKey(aggregate), row.seq);
        store.snapshots.get(identityKey(aggregate))?.value.fill(0);
        store.snapshots.delete(identityKey(aggregate));
      }
    }
  }
}

function writeKeys(store: MemoryStore, rows: readonly KeyRow[]): void {
  for (const { key, record, expiresAt } of rows) {
    const old = store.keys.get(identityKey(key));
    old?.record.fill(0);
    store.keys.set(identityKey(key), { key: copyIdentity(key), record: copy(record), expiresAt });
  }
}

class MemoryStorage implements Storage {
  readonly kind = 'memory' as const;
  readonly location = 'memory';
  readonly #store: MemoryStore;
  readonly #watchers = new Set<() => void>();
  #announced: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: MemoryStore) {
    this.#store = store;
    store.connections.add(this);
  }

  /** Another connection committed: tell this one's watchers on a later turn, once per burst. */
  heard(): void {
    if (this.#watchers.size === 0 || this.#announced !== undefined) return;
    this.#announced = setTimeout(() => {
      this.#announced = undefined;
      for (const watcher of this.#watchers) watcher();
    }, WATCH_DELAY_MS);
    this.#announced.unref();
  }

  #open(): MemoryStore {
    if (this.#closed) throw new Error('memory engine: the connection is closed');
    return this.#store;
  }

  async head(): Promise<number> {
    return this.#open().events.length;
  }

  async records(seqs: readonly number[]): Promise<(Uint8Array | undefined)[]> {
    const { events } = this.#open();
    return seqs.map((seq) => {
      const record = events[seq - 1];
      return record === undefined ? undefined : copy(record);
    });
  }

  async scan(from: number, to: number, limit: number): Promise<{ seq: number; record: Uint8Array }[]> {
    const { events } = this.#open();
    const page: { seq: number; record: Uint8Array }[] = [];
    for (let seq = Math.max(1, from); seq <= Math.min(to, events.length) && page.length < limit; seq++) {
      page.push({ seq, record: copy(events[seq - 1] as Uint8Array) });
    }
    return page;
  }

  async actionSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    return seqsIn(this.#open().byAggregate.get(identityKey(aggregate)), from, to, limit);
  }

  async effectSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    return seqsIn(this.#open().effectsByAggregate.get(identityKey(aggregate)), from, to, limit);
  }

  async affected(seqs: readonly number[]): Promise<(readonly Identity[] | undefined)[]> {
    const { affected } = this.#open();
    return seqs.map((seq) => affected.get(seq)?.map(copyIdentity));
  }

  async effectsFrom(from: number): Promise<{ seq: number; affected: readonly Identity[] }[]> {
    const store = this.#open();
    return [...store.affected.entries()]
      .filter(([seq]) => seq >= from)
      .sort(([a], [b]) => a - b)
      .map(([seq, affected]) => ({ seq, affected: affected.map(copyIdentity) }));
  }

  async write<Result>(request: WriteRequest, decide: (view: WriteView) => WriteDecision<Result>): Promise<Result> {
    const store = this.#open();
    const decision = decide(new MemoryView(store, request));
    if (decision.events !== undefined) writeEvents(store, decision.events);
    if (decision.keys !== undefined) writeKeys(store, decision.keys);
    if (decision.idempotency !== undefined) {
      const { key, first, last } = decision.idempotency;
      store.idempotency.set(key, { first, last });
    }
    if (decision.events !== undefined || decision.keys !== undefined) store.announce(this);
    return decision.result;
  }

  async snapshot(aggregate: Identity, upTo: number): Promise<{ seq: number; value: Uint8Array } | undefined> {
    const found = this.#open().snapshots.get(identityKey(aggregate));
    return found === undefined || found.seq > upTo ? undefined : { seq: found.seq, value: copy(found.value) };
  }

  async putSnapshot(aggregate: Identity, seq: number, value: Uint8Array): Promise<boolean> {
    const store = this.#open();
    const key = identityKey(aggregate);
    if (seqsIn(store.effectsByAggregate.get(key), seq + 1, Infinity, 1).length > 0) return false;
    const old = store.snapshots.get(key);
    if (old !== undefined && old.seq >= seq) return false;
    old?.value.fill(0);
    store.snapshots.set(key, { seq, value: copy(value) });
    return true;
  }

  async meta(name: string): Promise<Uint8Array | undefined> {
    const value = this.#open().meta.get(name);
    return value === undefined ? undefined : copy(value);
  }

  async initMeta(values: Readonly<Record<string, Uint8Array>>): Promise<Record<string, Uint8Array>> {
    const { meta } = this.#open();
    const stored: Record<string, Uint8Array> = {};
    for (const [name, value] of Object.entries(values)) {
      if (!meta.has(name)) meta.set(name, copy(value));
      stored[name] = copy(meta.get(name) as Uint8Array);
    }
    return stored;
  }

  async keyRecords(keys: readonly Identity[]): Promise<KeyRecords> {
    const store = this.#open();
    const records = keys.map((key) => {
      const stored = store.keys.get(identityKey(key));
      return stored === undefined ? undefined : copy(stored.record);
    });
    return { records, lastEffect: store.lastEffect };
  }

  async *allKeys(): AsyncIterable<{ key: Identity; record: Uint8Array }> {
    const keys = [...this.#open().keys.values()].sort((a, b) => compareIdentities(a.key, b.key));
    for (const { key, record } of keys) yield { key: copyIdentity(key), record: copy(record) };
  }

  async expiringKeys(at: number | undefined): Promise<{ key: Identity; expiresAt: number }[]> {
    const expiring: { key: Identity; expiresAt: number }[] = [];
    for (const { key, expiresAt } of this.#open().keys.values()) {
      if (expiresAt !== null && (at === undefined || expiresAt <= at)) expiring.push({ key: copyIdentity(key), expiresAt });
    }
    expiring.sort((a, b) => a.expiresAt - b.expiresAt || compareIdentities(a.key, b.key));
    return at === undefined ? expiring.slice(0, 1) : expiring;
  }

  async consumerMeta(name: string): Promise<Uint8Array | undefined> {
    const meta = this.#open().consumers.get(name)?.meta;
    return meta === undefined ? undefined : copy(meta);
  }

  async consumers(): Promise<{ name: string; meta: Uint8Array }[]> {
    return [...this.#open().consumers.entries()]
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map(([name, { meta }]) => ({ name, meta: copy(meta) }));
  }

  async states(name: string, aggregates: readonly Identity[]): Promise<(Uint8Array | undefined)[]> {
    const consumer = this.#open().consumers.get(name);
    return aggregates.map((aggregate) => {
      const state = consumer?.states.get(identityKey(aggregate));
      return state === undefined ? undefined : copy(state.value);
    });
  }

  async *allStates(name: string, kind?: string): AsyncIterable<{ aggregate: Identity; value: Uint8Array }> {
    const consumer = this.#open().consumers.get(name);
    if (consumer === undefined) return;
    const states = [...consumer.states.values()]
      .filter((state) => kind === undefined || state.aggregate[0] === kind)
      .sort((a, b) => compareIdentities(a.aggregate, b.aggregate));
    for (const { aggregate, value } of states) yield { aggregate: copyIdentity(aggregate), value: copy(value) };
  }

  async commitStates(name: string, expected: Uint8Array | undefined, meta: Uint8Array, changes: readonly StateChange[]): Promise<boolean> {
    const store = this.#open();
    let consumer = store.consumers.get(name);
    if (!sameBytes(consumer?.meta, expected)) return false;
    if (consumer === undefined) store.consumers.set(name, (consumer = { meta, states: new Map() }));
    for (const { aggregate, value, wipe } of changes) {
      const key = identityKey(aggregate);
      if (wipe) consumer.states.get(key)?.value.fill(0);
      if (value === undefined) consumer.states.delete(key);
      else consumer.states.set(key, { aggregate: copyIdentity(aggregate), value: copy(value) });
    }
    consumer.meta = copy(meta);
    return true;
  }

  async dropConsumer(name: string): Promise<void> {
    this.#open().consumers.delete(name);
  }

  async verify(head: number, check: VerifyCheck): Promise<{ seq: number; reason: string } | undefined> {
    // The indexes here are built from the rows the log handed over, in the same call: they can
    // only disagree with the events through a bug, which is what this walk would show.
    const store = this.#open();
    for (let seq = 1; seq <= Math.min(head, store.events.length); seq++) {
      const facts = check.inspect(seq, copy(store.events[seq - 1] as Uint8Array));
      if (facts.type === 'action') {
        if (!(store.byAggregate.get(identityKey(facts.aggregate)) ?? []).includes(seq)) return { seq, reason: 'missing from the aggregate index' };
        for (const trigger of facts.triggers) {
          const linked = store.byTrigger.get(identityKey(trigger))?.find((link) => link.seq === seq);
          if (linked === undefined || identityKey(linked.aggregate) !== identityKey(facts.aggregate)) return { seq, reason: 'missing or wrong in the trigger index' };
        }
      } else {
        const recorded = store.affected.get(seq);
        const expected = linkedAggregates(store, facts.trigger, seq);
        if (recorded === undefined || recorded.map(identityKey).join('\n') !== expected.map(identityKey).join('\n')) {
          return { seq, reason: 'the affected aggregates recorded for the effect disagree with the trigger index' };
        }
        for (const aggregate of expected) {
          if (!(store.effectsByAggregate.get(identityKey(aggregate)) ?? []).includes(seq)) return { seq, reason: 'missing from the effect index' };
        }
      }
      if (facts.idempotency !== undefined) {
        const batch = store.idempotency.get(facts.idempotency.key);
        if (batch === undefined || batch.first !== seq || batch.last !== facts.idempotency.last) return { seq, reason: 'the idempotency key of its batch is missing or wrong in the idempotency table' };
      }
      if (seq % 10_000 === 0) check.onProgress?.(seq);
    }
    return undefined;
  }

  async stats(): Promise<StorageStats> {
    const store = this.#open();
    let bytes = 0;
    for (const record of store.events) bytes += record.length;
    for (const { record } of store.keys.values()) bytes += record.length;
    for (const consumer of store.consumers.values()) for (const { value } of consumer.states.values()) bytes += value.length;
    return { aggregates: store.aggregates.size, bytes };
  }

  async compact(onProgress?: (done: number, total: number) => void): Promise<void> {
    // Replaced bytes were zeroed when they were replaced: there is nothing else to rewrite.
    this.#open();
    onProgress?.(0, 0);
  }

  watch(listener: () => void): () => void {
    this.#watchers.add(listener);
    return () => {
      this.#watchers.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#announced);
    this.#watchers.clear();
    this.#store.connections.delete(this);
  }
}

/**
 * An engine that keeps the store in memory, for tests and prototypes. Logs opened on the same
 * object share the store while the object lives (a log closed and opened again on it sees what
 * was written); nothing is written to disk and nothing survives the process.
 *
 * @example
 * const engine = memoryEngine();
 * const log = await openLog({ engine });
 */
export function memoryEngine(): Engine {
  const store = new MemoryStore();
  return toEngineHandle({
    kind: 'memory',
    async open() {
      return new MemoryStorage(store);
    },
  });
}
