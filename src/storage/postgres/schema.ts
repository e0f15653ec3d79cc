/**
 * The tables of a store in its PostgreSQL schema, and the versioned migrations that create them.
 *
 *   migrations            version -> when it was applied: the schema's version is the highest
 *   meta                  name -> bytes                   store-wide values (the KEK salt and check)
 *   events                seq -> record, aggregate        the log itself; aggregate is null for effects
 *     (aggregate, seq)                                    every action, by its aggregate
 *   triggers              (trigger, seq) -> aggregate     every action, by each trigger it links to
 *   effects               seq -> affected (msgpack)       the aggregates an effect affects
 *   effects_by_aggregate  (aggregate, seq)                every effect, by each aggregate it affects
 *   keys                  key -> record, expires_at       the key ring; expires_at while live
 *     (expires_at, key)                                   live keys by expiry, for expire()
 *   consumers             name -> meta                    each projection's record
 *   states                (name, aggregate) -> value      each projection's states
 *   idempotency           key -> first, last              the seqs a keyed batch wrote
 *   snapshots             aggregate -> seq, value         the latest snapshot of an aggregate
 *   append_group(...)     a function: the one-round-trip write of write-queue.ts
 *
 * Identities, consumer names and idempotency keys are `bytea` (see identity-bytes.ts): byte
 * order is the contract's order and no column holds text, so the database's encoding and
 * collation play no part. The conflict check of an action is two index range scans from
 * `(aggregate, base + 1)`, O(log n + conflicts found), as on LMDB.
 *
 * Migrations run at open, in one transaction under an advisory lock of the schema, so processes
 * opening at once do not race; a schema newer than this build knows is refused.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError, StorageError, UnsupportedFormatError } from '../../errors.ts';
import { describe } from '../../model/json-pointer.ts';
import { run, transaction, withClient, type PostgresPool } from './driver.ts';

/** The SQLSTATE `append_group` raises when the head is not the one it was given. */
export const HEAD_MOVED = 'CH001';

/** What each migration does, in order; the schema's version is how many of them it has had. */
const MIGRATIONS: readonly ((s: string) => string)[] = [
  (s) => `
    CREATE TABLE ${s}.meta (name text PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE ${s}.events (seq bigint PRIMARY KEY, record bytea NOT NULL, aggregate bytea);
    CREATE INDEX events_by_aggregate ON ${s}.events (aggregate, seq);
    CREATE TABLE ${s}.triggers (trigger bytea NOT NULL, seq bigint NOT NULL, aggregate bytea NOT NULL, PRIMARY KEY (trigger, seq));
    CREATE TABLE ${s}.effects (seq bigint PRIMARY KEY, affected bytea NOT NULL);
    CREATE TABLE ${s}.effects_by_aggregate (aggregate bytea NOT NULL, seq bigint NOT NULL, PRIMARY KEY (aggregate, seq));
    CREATE TABLE ${s}.keys (key bytea PRIMARY KEY, record bytea NOT NULL, expires_at bigint);
    CREATE INDEX keys_by_expiry ON ${s}.keys (expires_at, key) WHERE expires_at IS NOT NULL;
    CREATE TABLE ${s}.consumers (name bytea PRIMARY KEY, meta bytea NOT NULL);
    CREATE TABLE ${s}.states (name bytea NOT NULL, aggregate bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (name, aggregate));
    CREATE TABLE ${s}.idempotency (key bytea PRIMARY KEY, first bigint NOT NULL, last bigint NOT NULL);
    CREATE TABLE ${s}.snapshots (aggregate bytea PRIMARY KEY, seq bigint NOT NULL, value bytea NOT NULL);
    -- A group of appends decided on the head the writer's last commit left: one round trip. The
    -- lock is transaction-scoped, so it is held through the commit of the calling statement; each
    -- statement of a VOLATILE function takes a fresh snapshot, so the head read after the lock
    -- holds every commit of the writer before.
    CREATE FUNCTION ${s}.append_group(lock_key bigint, expected bigint, seqs bigint[], records bytea[], aggregates bytea[],
        link_triggers bytea[], link_seqs bigint[], link_aggregates bytea[], channel text, notice text) RETURNS void
      LANGUAGE plpgsql VOLATILE AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(lock_key);
        IF (SELECT coalesce(max(seq), 0) FROM ${s}.events) <> expected THEN
          RAISE EXCEPTION 'coherence: the head moved' USING ERRCODE = '${HEAD_MOVED}';
        END IF;
        INSERT INTO ${s}.events (seq, record, aggregate) SELECT * FROM unnest(seqs, records, aggregates);
        INSERT INTO ${s}.triggers (trigger, seq, aggregate) SELECT * FROM unnest(link_triggers, link_seqs, link_aggregates);
        PERFORM pg_notify(channel, notice);
      END $$;
  `,
];

/** The schema version this build writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The tables `compact()` rewrites: those whose rows are replaced or deleted (keys, projections, snapshots). */
export const REWRITTEN_TABLES = ['keys', 'states', 'consumers', 'snapshots'] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The schema name, checked: an unquoted-style SQL identifier of at most 63 bytes, not `pg_...`.
 * @throws InvalidArgumentError otherwise.
 */
export function prepareSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema) || schema.length > 63 || schema.toLowerCase().startsWith('pg_')) {
    throw new InvalidArgumentError(`options.schema: expected an SQL identifier (letters, digits and _, not starting with a digit or pg_, at most 63 characters), got ${describe(schema)}`);
  }
  return schema;
}

/** The schema as it appears in SQL: always quoted, so its case is kept. */
export function quoted(schema: string): string {
  return `"${schema}"`;
}

/** An advisory lock key of the schema for `purpose`, as a bigint literal (64 bits of SHA-256). */
export function lockKey(schema: string, purpose: 'write' | 'migrate'): string {
  return createHash('sha256').update(`coherence:${purpose}:${schema}`).digest().readBigInt64BE(0).toString();
}

async function storedVersion(run_: (text: string, values?: unknown[]) => Promise<Record<string, unknown>[]>, schema: string): Promise<number> {
  const [exists] = await run_('SELECT to_regclass($1) IS NOT NULL AS exists', [`${quoted(schema)}.migrations`]);
  if (exists?.exists !== true) return 0;
  const [row] = await run_(`SELECT coalesce(max(version), 0) AS version FROM ${quoted(schema)}.migrations`);
  return Number(row?.version ?? 0);
}

function assertKnown(version: number, schema: string, location: string): void {
  if (version > SCHEMA_VERSION) {
    throw new UnsupportedFormatError(`${location} schema ${schema}: expected a store of schema version ${SCHEMA_VERSION} or older, got version ${version}; upgrade coherence to open it`);
  }
}

/**
 * Brings the schema to {@link SCHEMA_VERSION}, creating it when missing. On a hot standby, which
 * refuses writes, it only checks that the primary has done so.
 * @returns whether the server is a standby (in recovery).
 * @throws UnsupportedFormatError when the schema is newer than this build.
 * @throws StorageError when the database cannot be reached, or a standby's schema is not current.
 */
export async function migrate(pool: PostgresPool, schema: string, location: string): Promise<{ standby: boolean }> {
  const standby = await withClient(pool, async (client) => {
    const [row] = await run(client, 'SELECT pg_is_in_recovery() AS standby');
    if (row?.standby !== true) return false;
    const version = await storedVersion((text, values) => run(client, text, values), schema);
    assertKnown(version, schema, location);
    if (version < SCHEMA_VERSION) {
      throw new StorageError(`${location} is a standby whose schema ${schema} is at version ${version}, expected ${SCHEMA_VERSION}; open the store on the primary first`);
    }
    return true;
  });
  if (standby) return { standby };
  await transaction(pool, async (client) => {
    await run(client, `SELECT pg_advisory_xact_lock(${lockKey(schema, 'migrate')})`);
    const version = await storedVersion((text, values) => run(client, text, values), schema);
    assertKnown(version, schema, location);
    if (version === SCHEMA_VERSION) return;
    const s = quoted(schema);
    await run(client, `CREATE SCHEMA IF NOT EXISTS ${s}; CREATE TABLE IF NOT EXISTS ${s}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (let next = version; next < SCHEMA_VERSION; next++) {
      await run(client, (MIGRATIONS[next] as (s: string) => string)(s));
      await run(client, `INSERT INTO ${s}.migrations (version) VALUES (${next + 1})`);
    }
  });
  return { standby };
}
