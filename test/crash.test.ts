import { join } from 'node:path';
import { it } from 'vitest';
import { checkKilledWriters } from './support/killed-writers.ts';
import { tempDir } from './support/temp-log.ts';

it('keeps every acknowledged event, gapless and verifiable, when the writing process is killed at random moments, 20 times over', async () => {
  await checkKilledWriters(join(tempDir(), 'store'), 20);
});
