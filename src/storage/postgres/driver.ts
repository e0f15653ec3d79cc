/**
 * What the PostgreSQL engine needs of its driver, node-postgres (`pg`), described structurally so
 * that no type of `pg` appears in coherence's signatures and `pg` stays an optional peer: it is
 * loaded with a dynamic import when an engine first opens, so `import 'coherence'` never needs it.
 *
 * Every database error is turned into a {@link StorageError} here, the driver's error as its cause.
 */
import { StorageError } from '../../errors.ts';

/** One row of a result, as node-postgres returns it (`bigint` as a string, `bytea` as a Buffer). */
export type Row = Record<string, unknown>;

/**
 * A connection taken from a pool: the methods of node-postgres's `PoolClient` the engine uses.
 * A `pg.PoolClient` is one; the engine holds one of them while a log is followed (LISTEN).
 *
 * @example
 * const client: PostgresClient = await pool.connect(); // what a PostgresPool hands out
 */
export interface PostgresClient {
  query(config: { text: string; values?: unknown[]; name?: string }): Promise<unknown>;
  release(error?: Error | boolean): void;
  on(event: 'notification', listener: (message: { channel: string; payload?: string | undefined }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * A connection pool: the one method of node-postgres's `Pool` the engine uses. A `pg.Pool` is
 * one. The engine never ends a pool it was given.
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
 * const log = await openLog({ engine: postgresEngine({ pool }) });
 */
export interface PostgresPool {
  connect(): Promise<PostgresClient>;
}

/** A pool the engine made itself, which it ends on close. */
export interface OwnPool extends PostgresPool {
  end(): Promise<void>;
}

interface Driver {
  Pool: new (config: { connectionString: string; max: number; application_name: string }) => OwnPool;
}

let driver: Promise<Driver> | undefined;

/**
 * node-postgres, loaded once.
 * @throws StorageError when `pg` is not installed.
 */
export function loadDriver(): Promise<Driver> {
  driver ??= (async () => {
    try {
      const module = (await import('pg')) as unknown as { default?: Driver } & Driver;
      return module.default ?? module;
    } catch (cause) {
      driver = undefined;
      throw new StorageError('postgresEngine: expected the PostgreSQL driver "pg" to be installed (npm install pg), got an error loading it', { cause });
    }
  })();
  return driver;
}

/** Why a database call failed, for the message (the driver's message holds no row data). */
function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Runs one statement (with `values`: the extended protocol, one statement; without: the simple
 * protocol, several statements separated by `;`, each with its own snapshot).
 * @throws StorageError when the database refuses it or cannot be reached.
 */
export async function run(client: PostgresClient, text: string, values?: unknown[], name?: string): Promise<Row[]> {
  let result: unknown;
  try {
    result = await client.query(values === undefined ? { text } : name === undefined ? { text, values } : { text, values, name });
  } catch (cause) {
    throw new StorageError(`PostgreSQL: ${describeCause(cause)}`, { cause });
  }
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  return ((last as { rows?: Row[] } | undefined)?.rows ?? []) as Row[];
}

/**
 * Runs several statements in one round trip (the simple protocol, no parameters); returns the
 * rows of each, in order.
 * @throws StorageError when the database refuses one (those after it are not run).
 */
export async function runAll(client: PostgresClient, text: string): Promise<Row[][]> {
  let result: unknown;
  try {
    result = await client.query({ text });
  } catch (cause) {
    throw new StorageError(`PostgreSQL: ${describeCause(cause)}`, { cause });
  }
  return (Array.isArray(result) ? result : [result]).map((r) => ((r as { rows?: Row[] }).rows ?? []) as Row[]);
}

/**
 * Takes a connection from `pool`, runs `work` with it and gives it back (destroying it when
 * `work` failed on the connection itself, so a broken one is not handed out again).
 * @throws StorageError when no connection can be had.
 */
export async function withClient<T>(pool: PostgresPool, work: (client: PostgresClient) => Promise<T>): Promise<T> {
  let client: PostgresClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    throw new StorageError(`PostgreSQL: could not connect: ${describeCause(cause)}`, { cause });
  }
  try {
    const result = await work(client);
    client.release();
    return result;
  } catch (error) {
    client.release(error instanceof StorageError ? true : undefined);
    throw error;
  }
}

/**
 * Runs `work` in a transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws.
 * A connection that failed during the transaction is destroyed rather than returned to the pool.
 */
export async function transaction<T>(pool: PostgresPool, work: (client: PostgresClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  return withClient(pool, async (client) => {
    await run(client, begin);
    try {
      const result = await work(client);
      await run(client, 'COMMIT');
      return result;
    } catch (error) {
      await run(client, 'ROLLBACK').catch(() => {});
      throw error;
    }
  });
}

/** A `bigint` column as a number (seqs and times are safe integers). */
export function toNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number(value as string);
}

/** A `bytea` column or parameter as a Buffer, without copying. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
