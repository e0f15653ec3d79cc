/**
 * The contract suite (Emmett's `features.ts` pattern): every rule of the log, written once
 * against the public API, run by a thin test file per engine (`lmdb.test.ts`, `memory.test.ts`,
 * ...). An area module holds the tests of one area as a function of the engine under test; the
 * tests that are about LMDB's files or processes stay in test/*.test.ts.
 */
import { describe } from 'vitest';
import type { EngineKind } from '../../src/index.ts';
import type { LogOptions, TempLog } from '../support/temp-log.ts';
import { appendConflicts } from './append-conflicts.ts';
import { compact } from './compact.ts';
import { disjointMerge } from './disjoint-merge.ts';
import { encryption } from './encryption.ts';
import { encryptionProperties } from './encryption-properties.ts';
import { idempotency } from './idempotency.ts';
import { keyExpiry } from './key-expiry.ts';
import { keyRing } from './key-ring.ts';
import { logProperties } from './log-properties.ts';
import { projectionApi } from './projection-api.ts';
import { projectionFollow } from './projection-follow.ts';
import { projectionProperties } from './projection-properties.ts';
import { projectionReplay } from './projection-replay.ts';
import { reactions } from './reactions.ts';
import { readReplay } from './read-replay.ts';
import { sharedStore } from './shared-store.ts';
import { validation } from './validation.ts';
import { verify } from './verify.ts';

export type { LogOptions, TempLog } from '../support/temp-log.ts';

/** An engine as the contract suite sees it: a way to open logs on fresh stores of it. */
export interface TestEngine {
  /** How test names show it. */
  name: string;
  /** What `stats().engine` reports for it. */
  kind: EngineKind;
  /**
   * A log on a fresh store, closed (with every log `reopen` opened) and its store removed after
   * the test. `reopen` opens another log on the same store: for LMDB the same directory, for
   * memory the same engine object, for PostgreSQL the same schema.
   */
  tempLog(options?: LogOptions): Promise<TempLog>;
}

/** Registers the whole contract suite for `engine`. */
export function describeEngine(engine: TestEngine): void {
  describe(engine.name, () => {
    // SPEC 1, 2 and 7: events, options and bad input.
    validation(engine);
    // SPEC 3: appending and conflicts.
    appendConflicts(engine);
    disjointMerge(engine);
    idempotency(engine);
    // SPEC 5: reading; SPEC 1, 3 and 5 against the reference model.
    readReplay(engine);
    logProperties(engine);
    // SPEC 4: keys and encrypted values.
    keyRing(engine);
    keyExpiry(engine);
    encryption(engine);
    encryptionProperties(engine);
    // SPEC 6: projections.
    projectionApi(engine);
    projectionReplay(engine);
    projectionProperties(engine);
    projectionFollow(engine);
    // SPEC 11: process managers and notifiers.
    reactions(engine);
    // SPEC 8 and 4: verify and compact.
    verify(engine);
    compact(engine);
    // SPEC 15: logs sharing one store, stats.
    sharedStore(engine);
  });
}
