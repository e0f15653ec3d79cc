import { join } from 'node:path';
import { it } from 'vitest';
import { checkConcurrentWriters } from './support/concurrent-writers.ts';
import { tempDir } from './support/temp-log.ts';

it('keeps seqs gapless and every ok and conflict result true when four processes append conflicting batches to one store at once', async () => {
  await checkConcurrentWriters(join(tempDir(), 'store'), 4, 5_000);
});
