/**
 * Writes on PostgreSQL: one writer at a time across every connection of every machine, and the
 * writes of one connection object grouped into one transaction, as lmdb-js groups its commits.
 *
 * A group is one transaction:
 *   1. BEGIN, `pg_advisory_xact_lock` on the schema's write key, then the head (a statement of its
 *      own after the lock, so its snapshot holds every commit of the writer before),
 *   2. one query for the view of every write in the group (`= ANY($1)` over their aggregates,
 *      triggers, keys and idempotency keys; seqs after the lowest base),
 *   3. each `decide` in turn, on a view of what is stored plus what the writes before it in the
 *      group decided; a `decide` that throws rejects its own call only, and adds nothing,
 *   4. one multi-row statement (`unnest`) that inserts every row of the group, with a NOTIFY
 *      when it appended, then COMMIT.
 * Writes that arrive while a group runs wait for the next one. A database error (or a lost
 * connection) rejects every write of the group with a StorageError and nothing of it is written,
 * except for a connection lost during COMMIT, whose outcome is unknown as with any database.
 */
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';
import type { EventRow, IdempotentBatch, KeyRow, WriteDecision, WriteRequest, WriteView } from '../engine.ts';
import { run, toBuffer, toNumber, withClient, type PostgresClient, type PostgresPool } from './driver.ts';
import { identityBytes, identityOf, nameBytes } from './identity-bytes.ts';
import { lockKey, quoted } from './schema.ts';

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

  constructor(head: number, last: Buffer | undefined) {
    this.head = head;
    this.last = last;
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

/** The SQL of a group, for one schema. */
function statements(schema: string, channel: string) {
  const s = quoted(schema);
  return {
    begin: `BEGIN; SELECT pg_advisory_xact_lock(${lockKey(schema, 'write')}); SELECT seq, record FROM ${s}.events ORDER BY seq DESC LIMIT 1`,
    // One query for the whole view; t: 0 an action, 1 an effect on an aggregate, 2 a trigger's
    // link, 3 a key record, 4 an idempotency key.
    view: `
      SELECT 0 AS t, aggregate AS a, seq, NULL::bytea AS b, NULL::bigint AS last FROM ${s}.events WHERE aggregate = ANY($1::bytea[]) AND seq > $2
      UNION ALL SELECT 1, aggregate, seq, NULL, NULL FROM ${s}.effects_by_aggregate WHERE aggregate = ANY($1::bytea[]) AND seq > $2
      UNION ALL SELECT 2, trigger, seq, aggregate, NULL FROM ${s}.triggers WHERE trigger = ANY($3::bytea[])
      UNION ALL SELECT 3, key, NULL, record, NULL FROM ${s}.keys WHERE key = ANY($4::bytea[])
      UNION ALL SELECT 4, key, first, NULL, last FROM ${s}.idempotency WHERE key = ANY($5::bytea[])
      ORDER BY t, seq`,
    records: `SELECT seq, record FROM ${s}.events WHERE seq = ANY($1::bigint[])`,
    write: `
      WITH e AS (INSERT INTO ${s}.events (seq, record, aggregate) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])),
      t AS (INSERT INTO ${s}.triggers (trigger, seq, aggregate) SELECT * FROM unnest($4::bytea[], $5::bigint[], $6::bytea[])),
      f AS (INSERT INTO ${s}.effects (seq, affected) SELECT * FROM unnest($7::bigint[], $8::bytea[])),
      fa AS (INSERT INTO ${s}.effects_by_aggregate (aggregate, seq) SELECT * FROM unnest($9::bytea[], $10::bigint[])),
      k AS (INSERT INTO ${s}.keys (key, record, expires_at) SELECT * FROM unnest($11::bytea[], $12::bytea[], $13::bigint[])
            ON CONFLICT (key) DO UPDATE SET record = excluded.record, expires_at = excluded.expires_at),
      i AS (INSERT INTO ${s}.idempotency (key, first, last) SELECT * FROM unnest($14::bytea[], $15::bigint[], $16::bigint[]))
      SELECT pg_notify('${channel}', $17::text) WHERE $17::text IS NOT NULL`,
    writeName: `coherence_write_${schema}`,
    viewName: `coherence_view_${schema}`,
  };
}

/** The write queue of one connection object. */
export class WriteQueue {
  readonly #pool: PostgresPool;
  readonly #sql: ReturnType<typeof statements>;
  /** Goes into each NOTIFY, so this connection's own commits can be told apart. */
  readonly #origin: string;
  #pending: Pending[] = [];
  #running: Promise<void> | undefined;
  /** While set, groups wait for it (compact() has the tables). */
  #paused: Promise<void> | undefined;

  constructor(pool: PostgresPool, schema: string, channel: string, origin: string) {
    this.#pool = pool;
    this.#sql = statements(schema, channel);
    this.#origin = origin;
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
    while (this.#paused !== undefined) await this.#paused.catch(() => {});
    const done = (async () => {
      await this.idle();
      return work();
    })();
    this.#paused = done.then(() => {}, () => {});
    try {
      return await done;
    } finally {
      this.#paused = undefined;
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        while (this.#paused !== undefined) await this.#paused;
        const group = this.#pending.splice(0, MAX_GROUP);
        await this.#runGroup(group);
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #runGroup(group: Pending[]): Promise<void> {
    const decided: { pending: Pending; result: unknown }[] = [];
    try {
      await withClient(this.#pool, async (client) => {
        try {
          const [top] = await run(client, this.#sql.begin);
          const state = new GroupState(top === undefined ? 0 : toNumber(top.seq), top === undefined ? undefined : (top.record as Buffer));
          await this.#readView(client, state, group);
          for (const pending of group) {
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
          await this.#write(client, state);
          await run(client, 'COMMIT');
        } catch (error) {
          await run(client, 'ROLLBACK').catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      // Nothing of the group was written (those whose decide threw are settled already).
      for (const pending of group) pending.reject(error);
      return;
    }
    for (const { pending, result } of decided) pending.resolve(result);
  }

  /** Reads, in one query, what every write of the group asked for. */
  async #readView(client: PostgresClient, state: GroupState, group: readonly Pending[]): Promise<void> {
    const aggregates = new Map<string, Buffer>();
    const triggers = new Map<string, Buffer>();
    const keys = new Map<string, Buffer>();
    const idempotency = new Map<string, Buffer>();
    let base = Infinity;
    const add = (map: Map<string, Buffer>, bytes: Buffer) => map.set(keyOf(bytes), bytes);
    for (const { request } of group) {
      if (request.aggregates.length > 0 && request.base < state.head) {
        base = Math.min(base, request.base);
        for (const aggregate of request.aggregates) add(aggregates, identityBytes(aggregate));
      }
      for (const trigger of request.triggers) add(triggers, identityBytes(trigger));
      for (const key of request.keys) add(keys, identityBytes(key));
      if (request.idempotencyKey !== undefined) add(idempotency, nameBytes(request.idempotencyKey));
    }
    if (aggregates.size + triggers.size + keys.size + idempotency.size === 0) return;
    const rows = await run(
      client,
      this.#sql.view,
      [[...aggregates.values()], base === Infinity ? 0 : base, [...triggers.values()], [...keys.values()], [...idempotency.values()]],
      this.#sql.viewName,
    );
    for (const row of rows) {
      const key = keyOf(row.a as Buffer);
      switch (row.t as number) {
        case 0: pushTo(state.actions, key, toNumber(row.seq)); break;
        case 1: pushTo(state.effects, key, toNumber(row.seq)); break;
        case 2: pushTo(state.links, key, { seq: toNumber(row.seq), aggregate: identityOf(row.b as Buffer) }); break;
        case 3: state.keys.set(key, row.b as Buffer); break;
        case 4: state.idempotency.set(key, { first: toNumber(row.seq), last: toNumber(row.last) }); break;
      }
    }
    await this.#readRecords(client, state, group);
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
    for (const row of await run(client, this.#sql.records, [[...seqs]])) state.records.set(toNumber(row.seq), row.record as Buffer);
  }

  async #write(client: PostgresClient, state: GroupState): Promise<void> {
    const { events, triggers, effects, effectsByAggregate, keys, idempotency } = state.rows;
    if (events.seq.length === 0 && keys.size === 0 && idempotency.key.length === 0) return;
    const keyRows = [...keys.values()];
    await run(
      client,
      this.#sql.write,
      [
        events.seq, events.record, events.aggregate,
        triggers.trigger, triggers.seq, triggers.aggregate,
        effects.seq, effects.affected,
        effectsByAggregate.aggregate, effectsByAggregate.seq,
        keyRows.map(({ key }) => key), keyRows.map(({ row }) => toBuffer(row.record)), keyRows.map(({ row }) => row.expiresAt),
        idempotency.key, idempotency.first, idempotency.last,
        events.seq.length === 0 ? null : `${this.#origin} ${state.head}`,
      ],
      this.#sql.writeName,
    );
  }
}

