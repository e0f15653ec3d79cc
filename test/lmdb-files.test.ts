/**
 * What the LMDB engine leaves in its store directory: the tests that look at the files
 * themselves. The behaviour around them is in the contract suite (test/contract/).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, openLog, type OpenLogOptions } from '../src/index.ts';
import { newMasterKey, notDurations, rejection } from './support/crypto-fixtures.ts';
import { tempDir } from './support/temp-log.ts';

/** Lets tests hand the log what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

describe('options refused at openLog', () => {
  it('refuses an unknown openLog option and creates nothing', async () => {
    const path = join(tempDir(), 'store');
    const error = await rejection(openLog(loose<OpenLogOptions>({ path, maxEventByte: 10 })));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((error as Error).message).toMatch(/options\.maxEventByte: expected one of .*got an unknown option/);
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a keyTtl that is not a date-fns Duration at openLog, creating nothing', async () => {
    for (const keyTtl of notDurations) {
      const path = join(tempDir(), 'store');
      const error = await rejection(openLog({ path, masterKey: newMasterKey(), keyTtl: loose<{ days: number }>(keyTtl) }));
      expect(error, JSON.stringify(keyTtl)).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/keyTtl/);
      expect(existsSync(path)).toBe(false);
    }
  });
});
