/**
 * The contract suite on the PostgreSQL engine (COHERENCE_TEST_POSTGRES_URL), each store a fresh
 * schema dropped after the test once its logs are closed; skipped, saying so, without a server.
 */
import { describe } from 'vitest';
import { openLog } from '../../src/index.ts';
import { engineOn, freshSchema, POSTGRES_URL, reportSkipped, sql } from '../support/postgres.ts';
import { afterTest, tempLogOn } from '../support/temp-log.ts';
import { describeEngine, type TestEngine } from './describe-engine.ts';

const postgres: TestEngine = {
  name: 'postgres',
  kind: 'postgres',
  tempLog: (options) => {
    const schema = freshSchema();
    afterTest(() => sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).then(() => undefined));
    const engine = engineOn(schema);
    return tempLogOn((more) => openLog({ ...more, engine }), options);
  },
};

reportSkipped('COHERENCE_TEST_POSTGRES_URL', 'the contract suite on the PostgreSQL engine');
describe.skipIf(POSTGRES_URL === undefined)('on PostgreSQL', () => describeEngine(postgres));
