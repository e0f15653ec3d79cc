/**
 * Where a child process of a test opens its log: a store directory (LMDB), or `postgres:<schema>`
 * for that schema on the server of COHERENCE_TEST_POSTGRES_URL. Each child makes its own engine,
 * so its connections are its own, as another machine's would be.
 */
import { openLog, type Log, type OpenLogOptions } from '../../src/index.ts';
import { postgresEngine } from '../../src/storage/postgres/index.ts';

const POSTGRES = 'postgres:';

/** Opens the log at `target` (see above) with `options`. */
export function openTarget(target: string, options: Omit<OpenLogOptions, 'path' | 'engine'> = {}): Promise<Log> {
  if (!target.startsWith(POSTGRES)) return openLog({ ...options, path: target });
  const connectionString = process.env.COHERENCE_TEST_POSTGRES_URL;
  if (connectionString === undefined) throw new Error(`${target}: COHERENCE_TEST_POSTGRES_URL is not set`);
  return openLog({ ...options, engine: postgresEngine({ connectionString, schema: target.slice(POSTGRES.length) }) });
}

/** The target of a PostgreSQL schema. */
export function postgresTarget(schema: string): string {
  return `${POSTGRES}${schema}`;
}
