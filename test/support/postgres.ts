/**
 * PostgreSQL for the tests in test/postgres/: the server of COHERENCE_TEST_POSTGRES_URL (and its
 * hot standby, COHERENCE_TEST_POSTGRES_STANDBY_URL), each test on a fresh schema of a random name
 * that is dropped afterwards. `.ci/postgres start <dir>` starts a throw-away pair of servers.
 * Without the variables the tests are reported as skipped, with the reason in their name. Tests
 * that use it must not run concurrently (the schemas are dropped after each test).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, it } from 'vitest';
import { openLog, type Log, type OpenLogOptions } from '../../src/index.ts';
import { postgresEngine, type PostgresEngineOptions } from '../../src/storage/postgres/index.ts';

export const POSTGRES_URL = process.env.COHERENCE_TEST_POSTGRES_URL;
export const STANDBY_URL = process.env.COHERENCE_TEST_POSTGRES_STANDBY_URL;

const schemas: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  if (schemas.length > 0 && POSTGRES_URL !== undefined) {
    const dropped = schemas.splice(0);
    await sql(dropped.map((schema) => `DROP SCHEMA IF EXISTS "${schema}" CASCADE`).join('; '));
  }
});

/** A visible skipped test naming what is missing, where a describe block was skipped for it. */
export function reportSkipped(variable: 'COHERENCE_TEST_POSTGRES_URL' | 'COHERENCE_TEST_POSTGRES_STANDBY_URL', what: string): void {
  if (process.env[variable] === undefined) it.skip(`needs ${variable}: ${what} (start a server with .ci/postgres start <dir>)`, () => {});
}

/** A fresh schema name, dropped after the test. */
export function freshSchema(): string {
  const schema = `test_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

/** Runs SQL on the primary (or `url`) on a connection of its own; returns the last result's rows. */
export async function sql(text: string, values?: unknown[], url = POSTGRES_URL): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = (await client.query(text, values)) as unknown as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(result) ? result[result.length - 1] : result)?.rows ?? [];
  } finally {
    await client.end();
  }
}

/** An engine on the primary (or `url`) for `schema`. */
export function engineOn(schema: string, url = POSTGRES_URL, extra: Partial<PostgresEngineOptions> = {}) {
  return postgresEngine({ connectionString: url as string, schema, ...extra } as PostgresEngineOptions);
}

/** A log on `schema` (fresh by default), closed after the test. */
export async function postgresLog(options: Omit<OpenLogOptions, 'path' | 'engine'> = {}, schema = freshSchema(), url = POSTGRES_URL): Promise<Log> {
  const log = await openLog({ ...options, engine: engineOn(schema, url) });
  cleanups.push(() => log.close());
  return log;
}
