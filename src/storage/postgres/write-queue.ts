/**
 * Writes on PostgreSQL: one writer at a time across every connection of every machine, and the
 * writes of one connection object grouped into one transaction, as lmdb-js groups its commits.
 *
 * A group is one transaction:
 *   1. BEGIN, `pg_advisory_xact_lock` on the schema's write key, then the head (a statement of its
 *      own after the lock, so its snapshot holds every commit of the writer before),
 *   2. in the same round trip, one query for the view of every write in the group (`= ANY`
 *      over their aggregates, triggers, keys and idempotency keys; seqs after the lowest base),
 *   3. each `decide` in turn, on a view of what is stored plus what the writes before it in the
 *      group decided; a `decide` that throws rejects its own call only, and adds nothing,
 *   4. one multi-row insert (`unnest`) per table for every row of the group, a NOTIFY when it
 *      appended, and COMMIT, in one round trip.
 * So a group costs two round trips and one commit however many writes it holds. While this
 * connection is the only writer, a group of plain appends takes one: see `#speculate`.
 * Writes that arrive while a group runs wait for the next one. A database error (or a lost
 * connection) rejects every write of the group with a StorageError and nothing of it is written,
 * except for a connection lost during COMMIT, whose outcome is unknown as with any database.
 */
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';
import type { EventRow, IdempotentBatch, KeyRow, WriteDecision, WriteRequest, WriteView } from '../engine.ts';
import { run, runAll, toBuffer, toNumber, withClient, type PostgresClient, type PostgresPool, type Row } from './driver.ts';
import { bigintArray, byteaArray, integer, textLiteral } from './sql-literals.ts';
import { identityBytes, identityOf, nameBytes } from './identity-bytes.ts';
import { HEAD_MOVED, lockKey, quoted } from './schema.ts';
import { StorageError } from '../../errors.ts';

/** Writes per transaction at most: bounds the statement and how long the lock is held. */
const MAX_GROUP = 1000;

interface Pending {
  request: WriteRequest;
  decide: (view: WriteView) => WriteDecision<unknown>;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

/** Map keys for identities and names: their stored bytes, one char per byte. */
const keyOf = (bytes: Buffer): string => bytes.toString('latin1');

function pushTo<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** The rows a group inserts, column by column, as `unnest` takes them. */
class Rows {
  readonly events = { seq: [] as number[], record: [] as Buffer[], aggregate: [] as (Buffer | null)[] };
  readonly triggers = { trigger: [] as Buffer[], seq: [] as number[], aggregate: [] as Buffer[] };
  readonly effects = { seq: [] as number[], affected: [] as Buffer[] };
  readonly effectsByAggregate = { aggregate: [] as Buffer[], seq: [] as number[] };
  /** The last record of each key the group stores (one upsert per key and statement). */
  readonly keys = new Map<string, { key: Buffer; row: KeyRow }>();
  readonly idempotency = { key: [] as Buffer[], first: [] as number[], last: [] as number[] };
}

/**
 * What is stored (as read for the group) plus what the group decided so far: the view of the next
 * write. Everything the group adds has a seq above the stored head, so appending to the stored
 * lists keeps them ascending.
 */
class GroupState {
  head: number;
  last: Buffer | undefined;
  readonly actions = new Map<string, number[]>();
  readonly effects = new Map<string, number[]>();
  readonly links = new Map<string, { seq: number; aggregate: Identity }[]>();
  readonly keys = new Map<string, Buffer>();
  readonly idempotency = new Map<string, IdempotentBatch>();
  readonly records = new Map<number, Buffer>();
  readonly rows = new Rows();
  /** The newest effect's seq, read for a group whose writes want keys (undefined otherwise). */
  lastEffect: number | undefined;

  /** Bytes of the records the group has decided so far. */
  bytes = 0;

  constructor(head: number, last: Buffer | undefined) {
    this.head = head;
    this.last = last;
  }

  /** Takes in the rows of the view query (see GroupSql.begin). */
  load(rows: readonly Row[]): void {
    for (const row of rows) {
      const key = row.a === null ? '' : keyOf(row.a as Buffer);
      switch (row.t as number) {
        case 0: pushTo(this.actions, key, toNumber(row.seq)); break;
        case 1: pushTo(this.effects, key, toNumber(row.seq)); break;
        case 2: pushTo(this.links, key, { seq: toNumber(row.seq), aggregate: identityOf(row.b as Buffer) }); break;
        case 3: this.keys.set(key, row.b as Buffer); break;
        case 4: this.idempotency.set(key, { first: toNumber(row.seq), last: toNumber(row.last) }); break;
        case 5: this.lastEffect = toNumber(row.seq); break;
      }
    }
  }

  view(request: WriteRequest): WriteView {
    const state = this;
    const after = (seqs: number[] | undefined) => (seqs === undefined ? [] : seqs.filter((seq) => seq > request.base));
    const idempotent = request.idempotencyKey === undefined ? undefined : this.idempotency.get(keyOf(nameBytes(request.idempotencyKey)));
    return {
      head: this.head,
      last: this.last,
      idempotent: idempotent === undefined ? undefined : { ...idempotent },
      conflicting(aggregate) {
        const key = keyOf(identityBytes(aggregate));
        return { actions: after(state.actions.get(key)), effects: after(state.effects.get(key)) };
      },
      record: (seq) => this.records.get(seq),
      linked(trigger) {
        const seen = new Map<string, Identity>();
        for (const { aggregate } of state.links.get(keyOf(identityBytes(trigger))) ?? []) {
          const key = keyOf(identityBytes(aggregate));
          if (!seen.has(key)) seen.set(key, aggregate);
        }
        return [...seen.values()];
      },
      key: (key) => this.keys.get(keyOf(identityBytes(key))),
      lastEffect() {
        if (state.lastEffect === undefined) throw new Error('postgres engine: the newest effect is read only for writes that want keys');
        return state.lastEffect;
      },
    };
  }

  /**
   * Adds what a write decided to the group.
   * @throws Error when the events do not follow the head without gaps (a bug of the caller).
   */
  apply(decision: WriteDecision<unknown>): void {
    const events = decision.events ?? [];
    events.forEach((row, i) => {
      if (row.seq !== this.head + 1 + i) throw new Error(`postgres engine: expected seq ${this.head + 1 + i}, got ${row.seq}`);
    });
    for (const row of events) this.#addEvent(row);
    for (const row of decision.keys ?? []) {
      const key = identityBytes(row.key);
      this.keys.set(keyOf(key), toBuffer(row.record));
      this.rows.keys.set(keyOf(key), { key, row });
    }
    if (decision.idempotency !== undefined) {
      const { key, first, last } = decision.idempotency;
      const bytes = nameBytes(key);
      this.idempotency.set(keyOf(bytes), { first, last });
      this.rows.idempotency.key.push(bytes);
      this.rows.idempotency.first.push(first);
      this.rows.idempotency.last.push(last);
    }
  }

  #addEvent(row: EventRow): void {
    const record = toBuffer(row.record);
    const rows = this.rows;
    this.head = row.seq;
    this.last = record;
    this.records.set(row.seq, record);
    this.bytes += record.length;
    rows.events.seq.push(row.seq);
    rows.events.record.push(record);
    if (row.type === 'action') {
      const aggregate = identityBytes(row.aggregate);
      rows.events.aggregate.push(aggregate);
      pushTo(this.actions, keyOf(aggregate), row.seq);
      for (const trigger of row.triggers) {
        const bytes = identityBytes(trigger);
        rows.triggers.trigger.push(bytes);
        rows.triggers.seq.push(row.seq);
        rows.triggers.aggregate.push(aggregate);
        pushTo(this.links, keyOf(bytes), { seq: row.seq, aggregate: row.aggregate });
      }
    } else {
      rows.events.aggregate.push(null);
      if (this.lastEffect !== undefined) this.lastEffect = row.seq;
      rows.effects.seq.push(row.seq);
      rows.effects.affected.push(packr.pack(row.affected));
      for (const affected of row.affected) {
        const bytes = identityBytes(affected);
        rows.effectsByAggregate.aggregate.push(bytes);
        rows.effectsByAggregate.seq.push(row.seq);
        pushTo(this.effects, keyOf(bytes), row.seq);
      }
    }
  }
}

/** The rows a group may hold before it commits: writes beyond it wait for the next group. */
const MAX_GROUP_BYTES = 64 * 1024 * 1024;

/** What the writes of a group ask to read, deduplicated. */
interface Wanted {
  aggregates: Map<string, Buffer>;
  /** The lowest base of a write that asked for aggregates. */
  base: number;
  triggers: Map<string, Buffer>;
  keys: Map<string, Buffer>;
  idempotency: Map<string, Buffer>;
}

function wanted(group: readonly Pending[]): Wanted {
  const found: Wanted = { aggregates: new Map(), base: Number.MAX_SAFE_INTEGER, triggers: new Map(), keys: new Map(), idempotency: new Map() };
  const add = (map: Map<string, Buffer>, bytes: Buffer) => map.set(keyOf(bytes), bytes);
  for (const { request } of group) {
    if (request.aggregates.length > 0) found.base = Math.min(found.base, request.base);
    for (const aggregate of request.aggregates) add(found.aggregates, identityBytes(aggregate));
    for (const trigger of request.triggers) add(found.triggers, identityBytes(trigger));
    for (const key of request.keys) add(found.keys, identityBytes(key));
    if (request.idempotencyKey !== undefined) add(found.idempotency, nameBytes(request.idempotencyKey));
  }
  return found;
}

/**
 * The SQL of a group, for one schema. Values go into the text (see sql-literals.ts) so that each
 * step is one round trip of several statements: the lock, the head and the view; then the
 * inserts, the NOTIFY and COMMIT.
 */
class GroupSql {
  readonly #s: string;
  readonly #lock: string;
  readonly #channel: string;

  constructor(schema: string, channel: string) {
    this.#s = quoted(schema);
    this.#lock = lockKey(schema, 'write');
    this.#channel = channel;
  }

  /**
   * BEGIN, the lock, then the head and the view, each a statement of its own after the lock, so
   * their snapshots hold every commit of the writer before. View rows: t 0 an action, 1 an effect
   * on a wanted aggregate after the base, 2 a wanted trigger's link, 3 a key record, 4 an
   * idempotency key, 5 the newest effect's seq (when keys are wanted).
   */
  begin(view: Wanted): string {
    const s = this.#s;
    const parts = [`BEGIN; SELECT pg_advisory_xact_lock(${this.#lock}); SELECT seq, record FROM ${s}.events ORDER BY seq DESC LIMIT 1`];
    const selects: string[] = [];
    if (view.aggregates.size > 0) {
      const aggregates = byteaArray([...view.aggregates.values()]);
      const base = integer(view.base);
      // The last condition is a one-time filter: with every base at the head (one writer keeping
      // up), the index scans do not run at all.
      const after = `seq > ${base} AND ${base} < (SELECT coalesce(max(seq), 0) FROM ${s}.events)`;
      selects.push(
        `SELECT 0 AS t, aggregate AS a, seq, NULL::bytea AS b, NULL::bigint AS last FROM ${s}.events WHERE aggregate = ANY(${aggregates}) AND ${after}`,
        `SELECT 1 AS t, aggregate AS a, seq, NULL::bytea AS b, NULL::bigint AS last FROM ${s}.effects_by_aggregate WHERE aggregate = ANY(${aggregates}) AND ${after}`,
      );
    }
    if (view.triggers.size > 0) selects.push(`SELECT 2 AS t, trigger AS a, seq, aggregate AS b, NULL::bigint AS last FROM ${s}.triggers WHERE trigger = ANY(${byteaArray([...view.triggers.values()])})`);
    if (view.keys.size > 0) {
      selects.push(
        `SELECT 3 AS t, key AS a, NULL::bigint AS seq, record AS b, NULL::bigint AS last FROM ${s}.keys WHERE key = ANY(${byteaArray([...view.keys.values()])})`,
        `SELECT 5 AS t, NULL::bytea AS a, coalesce(max(seq), 0) AS seq, NULL::bytea AS b, NULL::bigint AS last FROM ${s}.effects`,
      );
    }
    if (view.idempotency.size > 0) selects.push(`SELECT 4 AS t, key AS a, first AS seq, NULL::bytea AS b, last FROM ${s}.idempotency WHERE key = ANY(${byteaArray([...view.idempotency.values()])})`);
    if (selects.length > 0) parts.push(`SELECT * FROM (${selects.join(' UNION ALL ')}) AS v ORDER BY t, seq`);
    return parts.join('; ');
  }

  /** The records of stored events, for a disjoint-paths merge. */
  records(seqs: readonly number[]): string {
    return `SELECT seq, record FROM ${this.#s}.events WHERE seq = ANY(${bigintArray(seqs)})`;
  }

  /** Every row the group decided, the NOTIFY when it appended, and COMMIT. */
  commit(rows: Rows, notice: string | undefined): string {
    const s = this.#s;
    const parts: string[] = [];
    const { events, triggers, effects, effectsByAggregate, keys, idempotency } = rows;
    if (events.seq.length > 0) {
      parts.push(`INSERT INTO ${s}.events (seq, record, aggregate) SELECT * FROM unnest(${bigintArray(events.seq)}, ${byteaArray(events.record)}, ${byteaArray(events.aggregate)})`);
    }
    if (triggers.seq.length > 0) {
      parts.push(`INSERT INTO ${s}.triggers (trigger, seq, aggregate) SELECT * FROM unnest(${byteaArray(triggers.trigger)}, ${bigintArray(triggers.seq)}, ${byteaArray(triggers.aggregate)})`);
    }
    if (effects.seq.length > 0) parts.push(`INSERT INTO ${s}.effects (seq, affected) SELECT * FROM unnest(${bigintArray(effects.seq)}, ${byteaArray(effects.affected)})`);
    if (effectsByAggregate.seq.length > 0) {
      const affected = byteaArray(effectsByAggregate.aggregate);
      parts.push(`INSERT INTO ${s}.effects_by_aggregate (aggregate, seq) SELECT * FROM unnest(${affected}, ${bigintArray(effectsByAggregate.seq)})`);
      // An effect takes away what snapshots of the aggregates it affects may hold.
      parts.push(`DELETE FROM ${s}.snapshots WHERE aggregate = ANY(${affected})`);
    }
    if (keys.size > 0) {
      // An upsert: a shred's destroyed record replaces the live one as an UPDATE of its row.
      const list = [...keys.values()];
      parts.push(`INSERT INTO ${s}.keys (key, record, expires_at) SELECT * FROM unnest(${byteaArray(list.map((k) => k.key))}, ${byteaArray(list.map((k) => toBuffer(k.row.record)))}, ${bigintArray(list.map((k) => k.row.expiresAt))})
        ON CONFLICT (key) DO UPDATE SET record = excluded.record, expires_at = excluded.expires_at`);
    }
    if (idempotency.key.length > 0) {
      parts.push(`INSERT INTO ${s}.idempotency (key, first, last) SELECT * FROM unnest(${byteaArray(idempotency.key)}, ${bigintArray(idempotency.first)}, ${bigintArray(idempotency.last)})`);
    }
    if (notice !== undefined) parts.push(`SELECT pg_notify(${textLiteral(this.#channel)}, ${textLiteral(notice)})`);
    parts.push('COMMIT');
    return parts.join('; ');
  }
}

/** Whether a write can be decided on a known head alone: nothing after its base, nothing else to read. */
function canSpeculate(request: WriteRequest, head: number): boolean {
  return request.base >= head && request.triggers.length === 0 && request.keys.length === 0 && request.idempotencyKey === undefined;
}

/** The error append_group raises when the head is not the one the group was decided on. */
function headMoved(error: unknown): boolean {
  return error instanceof StorageError && (error.cause as { code?: unknown } | undefined)?.code === HEAD_MOVED;
}

/** The write queue of one connection object. */
export class WriteQueue {
  readonly #pool: PostgresPool;
  readonly #sql: GroupSql;
  /** Goes into each NOTIFY, so this connection's own commits can be told apart. */
  readonly #origin: string;
  #pending: Pending[] = [];
  #running: Promise<void> | undefined;
  /** While set, groups wait for it (compact() has the tables). */
  #paused: Promise<void> | undefined;
  /** The group being written, settled or not. */
  #inFlight: Promise<void> | undefined;
  /** The head and its record as this queue's last commit left them: what a speculative group assumes. */
  #known: { head: number; last: Buffer | undefined } | undefined;
  /** Groups to run without speculating, after a speculation found the head moved. */
  #skip = 0;
  #misses = 0;
  readonly #appendSql: string;
  readonly #appendName: string;
  readonly #lock: string;
  readonly #channel: string;

  constructor(pool: PostgresPool, schema: string, channel: string, origin: string) {
    this.#pool = pool;
    this.#sql = new GroupSql(schema, channel);
    this.#origin = origin;
    this.#appendSql = `SELECT ${quoted(schema)}.append_group($1, $2, $3::bigint[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bigint[], $8::bytea[], $9, $10)`;
    this.#appendName = `coherence_append_${schema}`;
    this.#lock = lockKey(schema, 'write');
    this.#channel = channel;
  }

  write<Result>(request: WriteRequest, decide: (view: WriteView) => WriteDecision<Result>): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#pending.push({ request, decide, resolve: resolve as (result: unknown) => void, reject });
      this.#running ??= this.#drain();
    });
  }

  /** Resolves once every write queued so far is settled. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Runs `work` with no group running meanwhile; writes queued meanwhile wait for it. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    while (this.#paused !== undefined) await this.#paused;
    let release = () => {};
    this.#paused = new Promise<void>((resolve) => { release = resolve; });
    try {
      // Only the group in flight is waited for: the drain starts no other while paused.
      await this.#inFlight;
      return await work();
    } finally {
      this.#paused = undefined;
      release();
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        while (this.#paused !== undefined) await this.#paused;
        const group = this.#pending.splice(0, MAX_GROUP);
        const running = this.#runGroup(group);
        this.#inFlight = running.then(() => {}, () => {});
        // runGroup settles its writes itself; anything it did not foresee fails them all.
        const left = await running.catch((error: unknown) => {
          for (const pending of group) pending.reject(error);
          return [];
        });
        this.#inFlight = undefined;
        // Writes a full group had no room for go first in the next one.
        this.#pending.unshift(...left);
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** Runs one group in one transaction; returns the writes it had no room for. */
  async #runGroup(group: Pending[]): Promise<Pending[]> {
    const known = this.#known;
    if (known !== undefined && this.#skip === 0 && group.every(({ request }) => canSpeculate(request, known.head))) {
      const done = await this.#speculate(group, known);
      if (done) return [];
    } else if (this.#skip > 0) this.#skip--;
    return this.#runLocked(group);
  }

  /**
   * The one-writer fast path, one round trip: the group is decided on the head this queue's last
   * commit left, and `append_group` (schema.ts) takes the lock, checks that the head is still
   * that one and writes, in the implicit transaction of one statement. Only for writes that need
   * nothing else from the store (no conflicts possible, no keys, triggers or idempotency key).
   * @returns false when the head had moved (or a decision needs more): run the group the usual way.
   */
  async #speculate(group: readonly Pending[], known: { head: number; last: Buffer | undefined }): Promise<boolean> {
    const state = new GroupState(known.head, known.last);
    const results: unknown[] = [];
    for (const pending of group) {
      let decision: WriteDecision<unknown>;
      try {
        decision = pending.decide(state.view(pending.request));
      } catch {
        // Its error is only settled on a view that was checked: the usual way.
        return false;
      }
      // A result without rows (a dry run, an invalid base) would not be checked by a write either.
      if (decision.events === undefined || decision.events.length === 0 || decision.keys !== undefined || decision.idempotency !== undefined) return false;
      if (decision.events.some((row) => row.type === 'effect')) return false;
      state.apply(decision);
      results.push(decision.result);
      if (state.bytes > MAX_GROUP_BYTES) return false;
    }
    const { events, triggers } = state.rows;
    try {
      await withClient(this.#pool, (client) => run(client, this.#appendSql, [
        this.#lock, known.head, events.seq, events.record, events.aggregate, triggers.trigger, triggers.seq, triggers.aggregate,
        this.#channel, `${this.#origin} ${state.head}`,
      ], this.#appendName));
    } catch (error) {
      this.#known = undefined;
      if (headMoved(error)) {
        // Another writer got in: back off from speculating, doubling while it keeps happening.
        this.#misses = Math.min(this.#misses + 1, 6);
        this.#skip = 2 ** this.#misses - 1;
        return false;
      }
      // Nothing was written: the statement's implicit transaction rolled back.
      for (const pending of group) pending.reject(error);
      return true;
    }
    this.#known = { head: state.head, last: state.last };
    this.#misses = 0;
    group.forEach((pending, i) => pending.resolve(results[i]));
    return true;
  }

  /** A group the usual way: BEGIN, the lock and the view; decide; the rows and COMMIT. */
  async #runLocked(group: Pending[]): Promise<Pending[]> {
    const decided: { pending: Pending; result: unknown }[] = [];
    let left: Pending[] = [];
    try {
      await withClient(this.#pool, async (client) => {
        try {
          const [, , top = [], view = []] = await runAll(client, this.#sql.begin(wanted(group)));
          const [last] = top;
          const state = new GroupState(last === undefined ? 0 : toNumber(last.seq), last === undefined ? undefined : (last.record as Buffer));
          state.load(view);
          await this.#readRecords(client, state, group);
          for (const [i, pending] of group.entries()) {
            if (state.bytes > MAX_GROUP_BYTES) {
              left = group.slice(i);
              break;
            }
            let decision: WriteDecision<unknown>;
            try {
              decision = pending.decide(state.view(pending.request));
              state.apply(decision);
            } catch (error) {
              pending.reject(error);
              continue;
            }
            decided.push({ pending, result: decision.result });
          }
          await runAll(client, this.#sql.commit(state.rows, state.rows.events.seq.length === 0 ? undefined : `${this.#origin} ${state.head}`));
          this.#known = { head: state.head, last: state.last };
        } catch (error) {
          this.#known = undefined;
          await run(client, 'ROLLBACK').catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      // Nothing of the group was written (those whose decide threw are settled already).
      for (const pending of group) if (!left.includes(pending)) pending.reject(error);
      return left;
    }
    for (const { pending, result } of decided) pending.resolve(result);
    return left;
  }

  /** The records of the stored events a disjoint-paths merge of the group may read. */
  async #readRecords(client: PostgresClient, state: GroupState, group: readonly Pending[]): Promise<void> {
    const seqs = new Set<number>();
    for (const { request } of group) {
      if (!request.conflictRecords) continue;
      for (const aggregate of request.aggregates) {
        const key = keyOf(identityBytes(aggregate));
        for (const seq of [...(state.actions.get(key) ?? []), ...(state.effects.get(key) ?? [])]) if (seq > request.base) seqs.add(seq);
      }
    }
    if (seqs.size === 0) return;
    for (const row of await run(client, this.#sql.records([...seqs]))) state.records.set(toNumber(row.seq), row.record as Buffer);
  }
}
