/**
 * The PostgreSQL engine: one log shared by processes on any number of machines. The tables are in
 * schema.ts, the writes (one writer at a time under an advisory lock, concurrent writes of a
 * connection object grouped into one transaction) in write-queue.ts, `watch` (LISTEN/NOTIFY) in
 * watcher.ts, verify in verify-tables.ts. Reads are single statements: events never change and
 * every seq up to a head another reader saw is committed, so they need no snapshot in common.
 */
import { createHash, randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../../errors.ts';
import { sameBytes } from '../../model/bytes.ts';
import { describe } from '../../model/json-pointer.ts';
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';
import { isPlainObject } from '../../model/validate.ts';
import type { KeyRecords, StateChange, Storage, StorageStats, VerifyCheck, WriteDecision, WriteRequest, WriteView } from '../engine.ts';
import { toEngineHandle, type Engine } from '../registry.ts';
import { loadDriver, run, toBuffer, toNumber, transaction, withClient, type OwnPool, type PostgresPool, type Row } from './driver.ts';
import { identityBytes, identityOf, kindRange, nameBytes } from './identity-bytes.ts';
import { lockKey, migrate, prepareSchemaName, quoted, REWRITTEN_TABLES } from './schema.ts';
import { verifyTables } from './verify-tables.ts';
import { Watcher } from './watcher.ts';
import { WriteQueue } from './write-queue.ts';

/** Connections in a pool the engine makes, unless `poolSize` says otherwise. */
const DEFAULT_POOL_SIZE = 10;
/** Rows per page of the keyset walks (allKeys, allStates). */
const PAGE = 512;

/**
 * Options of {@link postgresEngine}: where the database is (a connection string, or a pool of
 * yours), and the schema that holds the store's tables.
 *
 * @example
 * const options: PostgresEngineOptions = { connectionString: 'postgresql://app@db/shop', schema: 'shop', poolSize: 20 };
 */
export type PostgresEngineOptions = (
  | {
      /** A libpq-style URL, `postgresql://user:password@host:port/database`. */
      connectionString: string;
      /** Connections of the pool the engine makes for each open log (a follow holds one of them); default 10, at least 2. */
      poolSize?: number;
    }
  | {
      /**
       * A pool of yours (a node-postgres `pg.Pool`); the engine takes connections from it and never
       * ends it. A followed log holds one connection of it for LISTEN, so give it at least two.
       */
      pool: PostgresPool;
    }
) & {
  /** The PostgreSQL schema that holds the store, created at first open; default `'coherence'`. */
  schema?: string;
};

interface Settings {
  connect: () => Promise<{ pool: PostgresPool; own: OwnPool | undefined }>;
  schema: string;
  location: string;
}

/** Where a connection string points, without user or password. */
function describeTarget(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `postgres://${url.host}${url.pathname}`;
  } catch {
    return 'postgres';
  }
}

function prepareOptions(options: unknown): Settings {
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { connectionString } or { pool }, got ${describe(options)}`);
  const known = new Set(['connectionString', 'pool', 'poolSize', 'schema']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...known].join(', ')}, got an unknown option`);
  }
  const { connectionString, pool, poolSize, schema: schemaOption } = options;
  const schema = schemaOption === undefined ? 'coherence' : prepareSchemaName(schemaOption);
  if ((connectionString === undefined) === (pool === undefined)) {
    throw new InvalidArgumentError(`options: expected connectionString or pool, got ${connectionString === undefined ? 'neither' : 'both'}`);
  }
  if (pool !== undefined) {
    if (typeof pool !== 'object' || pool === null || typeof (pool as PostgresPool).connect !== 'function') {
      throw new InvalidArgumentError(`options.pool: expected a pool with a connect() method (a pg.Pool), got ${describe(pool)}`);
    }
    if (poolSize !== undefined) throw new InvalidArgumentError('options.poolSize: expected it only with connectionString (size your own pool yourself), got it with pool');
    return { connect: async () => ({ pool: pool as PostgresPool, own: undefined }), schema, location: `postgres (pool) schema ${schema}` };
  }
  if (typeof connectionString !== 'string' || connectionString.length === 0) {
    throw new InvalidArgumentError(`options.connectionString: expected a non-empty string, got ${describe(connectionString)}`);
  }
  if (poolSize !== undefined && (typeof poolSize !== 'number' || !Number.isSafeInteger(poolSize) || poolSize < 2)) {
    throw new InvalidArgumentError(`options.poolSize: expected an integer of at least 2, got ${describe(poolSize)}`);
  }
  const size = (poolSize as number | undefined) ?? DEFAULT_POOL_SIZE;
  return {
    async connect() {
      const { Pool } = await loadDriver();
      const own = new Pool({ connectionString, max: size, application_name: 'coherence' });
      // An idle connection that breaks is dropped by the pool; without a listener it would crash the process.
      (own as unknown as { on(event: 'error', listener: () => void): void }).on('error', () => {});
      return { pool: own, own };
    },
    schema,
    location: `${describeTarget(connectionString)} schema ${schema}`,
  };
}

class PostgresStorage implements Storage {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly #pool: PostgresPool;
  readonly #own: OwnPool | undefined;
  readonly #schema: string;
  /** The schema in SQL, quoted. */
  readonly #s: string;
  readonly #writes: WriteQueue;
  readonly #watcher: Watcher;
  #closed: Promise<void> | undefined;

  constructor(settings: Settings, pool: PostgresPool, own: OwnPool | undefined, standby: boolean) {
    this.location = settings.location;
    this.#pool = pool;
    this.#own = own;
    this.#schema = settings.schema;
    this.#s = quoted(settings.schema);
    const channel = `coherence_${createHash('sha256').update(settings.schema).digest('hex').slice(0, 32)}`;
    const origin = randomUUID();
    this.#writes = new WriteQueue(pool, settings.schema, channel, origin);
    this.#watcher = new Watcher(pool, channel, origin, standby ? () => this.head() : undefined);
  }

  #query(text: string, values?: unknown[]): Promise<Row[]> {
    return withClient(this.#pool, (client) => run(client, text, values));
  }

  async head(): Promise<number> {
    const [row] = await this.#query(`SELECT max(seq) AS head FROM ${this.#s}.events`);
    return row?.head === null || row?.head === undefined ? 0 : toNumber(row.head);
  }

  async records(seqs: readonly number[]): Promise<(Uint8Array | undefined)[]> {
    if (seqs.length === 0) return [];
    const found = new Map<number, Buffer>();
    for (const row of await this.#query(`SELECT seq, record FROM ${this.#s}.events WHERE seq = ANY($1::bigint[])`, [seqs])) {
      found.set(toNumber(row.seq), row.record as Buffer);
    }
    return seqs.map((seq) => found.get(seq));
  }

  async scan(from: number, to: number, limit: number): Promise<{ seq: number; record: Uint8Array }[]> {
    const rows = await this.#query(`SELECT seq, record FROM ${this.#s}.events WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3`, [from, to, limit]);
    return rows.map((row) => ({ seq: toNumber(row.seq), record: row.record as Buffer }));
  }

  async actionSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    return this.#seqs('events', aggregate, from, to, limit);
  }

  async effectSeqs(aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    return this.#seqs('effects_by_aggregate', aggregate, from, to, limit);
  }

  async #seqs(table: string, aggregate: Identity, from: number, to: number, limit: number): Promise<number[]> {
    const rows = await this.#query(
      `SELECT seq FROM ${this.#s}.${table} WHERE aggregate = $1 AND seq >= $2 AND seq < $3 ORDER BY aggregate, seq LIMIT $4`,
      [identityBytes(aggregate), from, Math.min(to, Number.MAX_SAFE_INTEGER), limit],
    );
    return rows.map((row) => toNumber(row.seq));
  }

  async affected(seqs: readonly number[]): Promise<(readonly Identity[] | undefined)[]> {
    if (seqs.length === 0) return [];
    const found = new Map<number, Identity[]>();
    for (const row of await this.#query(`SELECT seq, affected FROM ${this.#s}.effects WHERE seq = ANY($1::bigint[])`, [seqs])) {
      found.set(toNumber(row.seq), packr.unpack(row.affected as Buffer) as Identity[]);
    }
    return seqs.map((seq) => found.get(seq));
  }

  async effectsFrom(from: number): Promise<{ seq: number; affected: readonly Identity[] }[]> {
    const rows = await this.#query(`SELECT seq, affected FROM ${this.#s}.effects WHERE seq >= $1 ORDER BY seq`, [from]);
    return rows.map((row) => ({ seq: toNumber(row.seq), affected: packr.unpack(row.affected as Buffer) as Identity[] }));
  }

  write<Result>(request: WriteRequest, decide: (view: WriteView) => WriteDecision<Result>): Promise<Result> {
    return this.#writes.write(request, decide);
  }

  /** The latest snapshot of `aggregate`, if it was taken at a seq <= `upTo`. */
  async snapshot(aggregate: Identity, upTo: number): Promise<{ seq: number; value: Uint8Array } | undefined> {
    const [row] = await this.#query(`SELECT seq, value FROM ${this.#s}.snapshots WHERE aggregate = $1 AND seq <= $2`, [identityBytes(aggregate), upTo]);
    return row === undefined ? undefined : { seq: toNumber(row.seq), value: row.value as Buffer };
  }

  /**
   * Stores a snapshot in place of an older one, unless an effect affecting the aggregate came
   * after `seq` or a newer snapshot is there. Under the write lock, so no effect can be written
   * between the check and the commit.
   */
  async putSnapshot(aggregate: Identity, seq: number, value: Uint8Array): Promise<boolean> {
    const id = identityBytes(aggregate);
    const s = this.#s;
    return transaction(this.#pool, async (client) => {
      await run(client, `SELECT pg_advisory_xact_lock(${lockKey(this.#schema, 'write')})`);
      const [blocked] = await run(client, `SELECT EXISTS (SELECT 1 FROM ${s}.effects_by_aggregate WHERE aggregate = $1 AND seq > $2) AS effect,
        EXISTS (SELECT 1 FROM ${s}.snapshots WHERE aggregate = $1 AND seq >= $2) AS newer`, [id, seq]);
      if (blocked?.effect === true || blocked?.newer === true) return false;
      await run(client, `INSERT INTO ${s}.snapshots (aggregate, seq, value) VALUES ($1, $2, $3)
        ON CONFLICT (aggregate) DO UPDATE SET seq = excluded.seq, value = excluded.value`, [id, seq, toBuffer(value)]);
      return true;
    });
  }

  async meta(name: string): Promise<Uint8Array | undefined> {
    const [row] = await this.#query(`SELECT value FROM ${this.#s}.meta WHERE name = $1`, [name]);
    return row?.value as Buffer | undefined;
  }

  async initMeta(values: Readonly<Record<string, Uint8Array>>): Promise<Record<string, Uint8Array>> {
    const names = Object.keys(values);
    const read = async () => {
      const stored: Record<string, Uint8Array> = {};
      for (const row of await this.#query(`SELECT name, value FROM ${this.#s}.meta WHERE name = ANY($1::text[])`, [names])) stored[row.name as string] = row.value as Buffer;
      return stored;
    };
    const stored = await read();
    const missing = names.filter((name) => stored[name] === undefined);
    // Only what is missing is written, so a store already set up opens on a read-only standby.
    if (missing.length === 0) return stored;
    await this.#query(`INSERT INTO ${this.#s}.meta (name, value) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT (name) DO NOTHING`, [
      missing,
      missing.map((name) => toBuffer(values[name] as Uint8Array)),
    ]);
    return read();
  }

  async keyRecords(keys: readonly Identity[]): Promise<KeyRecords> {
    const wanted = keys.map(identityBytes);
    const found = new Map<string, Buffer>();
    let lastEffect = 0;
    // One statement, so one snapshot: the records and the newest effect are of the same moment.
    const rows = await this.#query(
      `SELECT NULL::bytea AS key, NULL::bytea AS record, coalesce(max(seq), 0) AS seq FROM ${this.#s}.effects
       UNION ALL SELECT key, record, NULL FROM ${this.#s}.keys WHERE key = ANY($1::bytea[])`,
      [wanted],
    );
    for (const row of rows) {
      if (row.key === null) lastEffect = toNumber(row.seq);
      else found.set((row.key as Buffer).toString('latin1'), row.record as Buffer);
    }
    return { records: wanted.map((key) => found.get(key.toString('latin1'))), lastEffect };
  }

  async *allKeys(): AsyncIterable<{ key: Identity; record: Uint8Array }> {
    for await (const row of this.#walk(`SELECT key AS k, record FROM ${this.#s}.keys WHERE key > $1 ORDER BY key LIMIT ${PAGE}`, [])) {
      yield { key: identityOf(row.k as Buffer), record: row.record as Buffer };
    }
  }

  /** Every row of a keyset walk on `k` (the first parameter is the last `k` seen, an empty bytea to start). */
  async *#walk(text: string, values: unknown[]): AsyncGenerator<Row> {
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      const rows = await this.#query(text, [after, ...values]);
      yield* rows;
      if (rows.length < PAGE) return;
      after = (rows[rows.length - 1] as Row).k as Buffer;
    }
  }

  async expiringKeys(at: number | undefined): Promise<{ key: Identity; expiresAt: number }[]> {
    const rows = at === undefined
      ? await this.#query(`SELECT key, expires_at FROM ${this.#s}.keys WHERE expires_at IS NOT NULL ORDER BY expires_at, key LIMIT 1`)
      : await this.#query(`SELECT key, expires_at FROM ${this.#s}.keys WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, key`, [at]);
    return rows.map((row) => ({ key: identityOf(row.key as Buffer), expiresAt: toNumber(row.expires_at) }));
  }

  async consumerMeta(name: string): Promise<Uint8Array | undefined> {
    const [row] = await this.#query(`SELECT meta FROM ${this.#s}.consumers WHERE name = $1`, [nameBytes(name)]);
    return row?.meta as Buffer | undefined;
  }

  async consumers(): Promise<{ name: string; meta: Uint8Array }[]> {
    const rows = await this.#query(`SELECT name, meta FROM ${this.#s}.consumers ORDER BY name`);
    return rows.map((row) => ({ name: (row.name as Buffer).toString('utf8'), meta: row.meta as Buffer }));
  }

  async states(name: string, aggregates: readonly Identity[]): Promise<(Uint8Array | undefined)[]> {
    if (aggregates.length === 0) return [];
    const wanted = aggregates.map(identityBytes);
    const found = new Map<string, Buffer>();
    const rows = await this.#query(`SELECT aggregate, value FROM ${this.#s}.states WHERE name = $1 AND aggregate = ANY($2::bytea[])`, [nameBytes(name), wanted]);
    for (const row of rows) found.set((row.aggregate as Buffer).toString('latin1'), row.value as Buffer);
    return wanted.map((aggregate) => found.get(aggregate.toString('latin1')));
  }

  async *allStates(name: string, kind?: string): AsyncIterable<{ aggregate: Identity; value: Uint8Array }> {
    const [low, high] = kind === undefined ? [Buffer.alloc(0), undefined] : kindRange(kind);
    const text = `SELECT aggregate AS k, value FROM ${this.#s}.states WHERE name = $2 AND aggregate > $1 AND aggregate >= $3
      ${high === undefined ? '' : 'AND aggregate < $4'} ORDER BY name, aggregate LIMIT ${PAGE}`;
    for await (const row of this.#walk(text, high === undefined ? [nameBytes(name), low] : [nameBytes(name), low, high])) {
      yield { aggregate: identityOf(row.k as Buffer), value: row.value as Buffer };
    }
  }

  async commitStates(name: string, expected: Uint8Array | undefined, meta: Uint8Array, changes: readonly StateChange[]): Promise<boolean> {
    const s = this.#s;
    const id = nameBytes(name);
    return transaction(this.#pool, async (client) => {
      if (expected === undefined) {
        // The first commit: whoever inserts the record first wins; a concurrent one waits and loses.
        const inserted = await run(client, `INSERT INTO ${s}.consumers (name, meta) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING 1 AS won`, [id, toBuffer(meta)]);
        if (inserted.length === 0) return false;
      } else {
        const [row] = await run(client, `SELECT meta FROM ${s}.consumers WHERE name = $1 FOR UPDATE`, [id]);
        if (!sameBytes(row?.meta as Buffer | undefined, expected)) return false;
        await run(client, `UPDATE ${s}.consumers SET meta = $2 WHERE name = $1`, [id, toBuffer(meta)]);
      }
      const removed = changes.filter((c) => c.value === undefined).map((c) => identityBytes(c.aggregate));
      const stored = changes.filter((c) => c.value !== undefined);
      if (removed.length > 0) await run(client, `DELETE FROM ${s}.states WHERE name = $1 AND aggregate = ANY($2::bytea[])`, [id, removed]);
      if (stored.length > 0) {
        await run(
          client,
          `INSERT INTO ${s}.states (name, aggregate, value) SELECT $1, * FROM unnest($2::bytea[], $3::bytea[])
           ON CONFLICT (name, aggregate) DO UPDATE SET value = excluded.value`,
          [id, stored.map((c) => identityBytes(c.aggregate)), stored.map((c) => toBuffer(c.value as Uint8Array))],
        );
      }
      return true;
    });
  }

  async dropConsumer(name: string): Promise<void> {
    const id = nameBytes(name);
    await transaction(this.#pool, async (client) => {
      await run(client, `DELETE FROM ${this.#s}.states WHERE name = $1`, [id]);
      await run(client, `DELETE FROM ${this.#s}.consumers WHERE name = $1`, [id]);
    });
  }

  async verify(head: number, check: VerifyCheck): Promise<{ seq: number; reason: string } | undefined> {
    return verifyTables(this.#pool, this.#schema, head, check);
  }

  async stats(): Promise<StorageStats> {
    // Distinct aggregates by skipping from one to the next in the (aggregate, seq) index:
    // O(aggregates log n), as on LMDB, and no table to maintain on every append.
    const [row] = await this.#query(`
      WITH RECURSIVE a AS (
        (SELECT aggregate FROM ${this.#s}.events WHERE aggregate IS NOT NULL ORDER BY aggregate LIMIT 1)
        UNION ALL
        SELECT (SELECT e.aggregate FROM ${this.#s}.events e WHERE e.aggregate > a.aggregate ORDER BY e.aggregate LIMIT 1) FROM a WHERE a.aggregate IS NOT NULL
      )
      SELECT (SELECT count(aggregate) FROM a) AS aggregates,
             (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'r') AS bytes`, [this.#schema]);
    return { aggregates: toNumber(row?.aggregates ?? 0), bytes: toNumber(row?.bytes ?? 0) };
  }

  /**
   * VACUUM FULL of the tables whose rows are replaced or deleted (keys, projection states and
   * records): each is rewritten into a new file without the old row versions, and the old file
   * is removed. Writes of this connection wait meanwhile; other connections' wait on the tables.
   */
  async compact(onProgress?: (done: number, total: number) => void): Promise<void> {
    await this.#writes.exclusive(async () => {
      onProgress?.(0, REWRITTEN_TABLES.length);
      for (const [i, table] of REWRITTEN_TABLES.entries()) {
        await this.#query(`VACUUM FULL ${this.#s}.${table}`);
        onProgress?.(i + 1, REWRITTEN_TABLES.length);
      }
    });
  }

  watch(listener: () => void): () => void {
    return this.#watcher.add(listener);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#writes.idle();
      await this.#watcher.close();
      await this.#own?.end();
    })();
    return this.#closed;
  }
}

/**
 * A PostgreSQL engine: one log shared by processes on any number of machines. Sequence numbers
 * stay global and gapless (one writer at a time, under an advisory lock of the schema), the
 * conflict check and the write are one transaction, `follow` hears every machine's appends
 * (LISTEN/NOTIFY), and a shred is seen by every machine once it returns. Concurrent appends of
 * one log share one transaction and one commit.
 *
 * The driver is node-postgres (`pg`, an optional peer dependency: `npm install pg`), loaded when
 * the first log opens. The tables live in `schema` (default `coherence`), created and migrated at
 * open; a schema written by a newer version is refused. A log opened on a hot standby reads
 * (read, state, get, verify, stats) and refuses writes with a StorageError.
 *
 * `log.compact()` rewrites the key and projection tables (VACUUM FULL), so no destroyed key
 * record remains in the database's tables; what remains in WAL, replicas and backups is in the
 * README ("PostgreSQL").
 *
 * @throws InvalidArgumentError for bad options (at once); StorageError from `openLog` when the
 *   driver is missing or the database cannot be reached; UnsupportedFormatError from `openLog`
 *   when the schema is newer than this build.
 * @example
 * import { openLog } from 'coherence';
 * import { postgresEngine } from 'coherence/postgres';
 * const log = await openLog({ engine: postgresEngine({ connectionString: process.env.DATABASE_URL! }) });
 */
export function postgresEngine(options: PostgresEngineOptions): Engine {
  const settings = prepareOptions(options);
  return toEngineHandle({
    kind: 'postgres',
    async open() {
      const { pool, own } = await settings.connect();
      try {
        const { standby } = await migrate(pool, settings.schema, settings.location);
        return new PostgresStorage(settings, pool, own, standby);
      } catch (error) {
        await own?.end().catch(() => {});
        throw error;
      }
    },
  });
}
