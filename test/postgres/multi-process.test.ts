import { describe, it } from 'vitest';
import { checkConcurrentWriters } from '../support/concurrent-writers.ts';
import { checkKilledWriters } from '../support/killed-writers.ts';
import { freshSchema, POSTGRES_URL, reportSkipped } from '../support/postgres.ts';
import { postgresTarget } from '../support/store-target.ts';

// Each child process opens its own engine, so its connections are its own, as another machine's.
describe.skipIf(POSTGRES_URL === undefined)('several processes on one PostgreSQL database', () => {
  it('keeps seqs gapless and every ok and conflict result true when three processes append 2,000 conflicting batches each', async () => {
    await checkConcurrentWriters(postgresTarget(freshSchema()), 3, 2_000);
  });

  it('keeps every acknowledged event, gapless and verifiable, when the writing process is killed at random moments, 10 times over', async () => {
    await checkKilledWriters(postgresTarget(freshSchema()), 10);
  });
});

reportSkipped('COHERENCE_TEST_POSTGRES_URL', 'processes appending to one PostgreSQL database at once, and killed mid-stream');
