/**
 * The engines the contract suite runs on, as {@link TestEngine}s. Another engine opens its logs
 * with `tempLogOn` and removes its store with `afterTest` (test/support/temp-log.ts), then gets
 * a thin `<name>.test.ts` calling `describeEngine`.
 */
import { memoryEngine, openLog } from '../../src/index.ts';
import { tempLog, tempLogOn } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

/** LMDB, each store in a fresh temporary directory. */
export const lmdb: TestEngine = { name: 'lmdb', kind: 'lmdb', tempLog };

/** The memory engine, a fresh `memoryEngine()` for each store. */
export const memory: TestEngine = {
  name: 'memory',
  kind: 'memory',
  tempLog: (options) => {
    const engine = memoryEngine();
    return tempLogOn((more) => openLog({ ...more, engine }), options);
  },
};
