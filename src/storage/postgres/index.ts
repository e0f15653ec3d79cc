/**
 * coherence/postgres: the PostgreSQL storage engine, for one log shared by many machines.
 * A subpath of its own, so that `import 'coherence'` never loads it, nor its driver (`pg`, an
 * optional peer dependency: install it next to coherence to use this engine).
 *
 * @example
 * import { openLog } from 'coherence';
 * import { postgresEngine } from 'coherence/postgres';
 * const log = await openLog({ engine: postgresEngine({ connectionString: 'postgresql://app@db/shop', schema: 'shop' }) });
 */
export { postgresEngine } from './postgres-engine.ts';
export type { PostgresEngineOptions } from './postgres-engine.ts';
export type { PostgresClient, PostgresPool } from './driver.ts';
