/**
 * What the LMDB engine leaves in its store directory: the tests that look at the files
 * themselves. The behaviour around them is in the contract suite (test/contract/).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, openLog, type Identity, type OpenLogOptions } from '../src/index.ts';
import { appendOk, appendSecrets, badMasterKeys, filesContaining, newMasterKey, notDurations, PUBLIC_TEXT, rejection, SECRETS } from './support/crypto-fixtures.ts';
import { action, allEvents, tempDir, tempLog } from './support/temp-log.ts';

const alice: Identity = ['customer', 'alice'];
const aliceKey: Identity = ['user', 'alice'];
const ALICE_EMAIL = 'alice.ultraviolet-7c1f@example.org';
const ERASED = '<erased>';

/** Lets tests hand the log what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

describe('the store directory', () => {
  it('is created with its parents when missing, and opened again where it is', async () => {
    const path = join(tempDir(), 'data', 'shop');
    const log = await openLog({ path });
    await log.append([action(alice, [{ op: 'add', path: '/name', value: 'Alice' }])], { base: 0 });
    await log.close();
    expect(existsSync(join(path, 'data.mdb'))).toBe(true);
    const again = await openLog({ path });
    expect(await again.head()).toBe(1);
    await again.close();
  });
});

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

  it('refuses a master key of the wrong length or format with InvalidArgumentError, creating nothing and echoing no key', async () => {
    const hex = newMasterKey();
    for (const masterKey of badMasterKeys(hex)) {
      const path = join(tempDir(), 'store');
      const error = await rejection(openLog({ path, masterKey: loose<string>(masterKey) }));
      expect(error, String(masterKey)).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/masterKey/);
      expect((error as Error).message).not.toContain(hex.slice(0, 16));
      expect(existsSync(path)).toBe(false);
    }
  });
});

describe('encrypted values on disk', () => {
  it('never writes the plaintext of an encrypted value to any file of the store, while the unencrypted text of the same events is there', async () => {
    const { log, path } = await tempLog({ masterKey: newMasterKey() });
    await appendSecrets(log);
    // Reading decrypts in memory only: it must not leave plaintext behind either.
    expect((await log.state(alice)).state).toMatchObject({ email: SECRETS.replaced, ids: { ssn: SECRETS.ssn } });
    expect(await allEvents(log)).toHaveLength(3);

    for (const check of [() => log.head(), () => log.close()]) {
      await check();
      for (const [name, secret] of Object.entries(SECRETS)) {
        expect(filesContaining(path, secret), `plaintext ${name}`).toEqual([]);
      }
      // The scan is real: the unencrypted text of the same events is found.
      for (const [name, text] of Object.entries(PUBLIC_TEXT)) {
        expect(filesContaining(path, text), `public ${name}`).toEqual([join(path, 'data.mdb')]);
      }
    }
  });
});

describe('a projection that meets a shred', () => {
  it('leaves no copy of the shredded plaintext in any file of the store once the log is compacted', async () => {
    const { log, path } = await tempLog({ masterKey: newMasterKey(), redact: () => ERASED });
    await appendOk(log, [action(alice, [{ op: 'add', path: '/name', value: 'Alice' }, { op: 'add', path: '/email', value: ALICE_EMAIL }], { encrypt: { key: aliceKey, paths: ['/email'] } })]);
    const customers = log.projection('customers');
    await customers.catchUp();
    await log.keys.shred(aliceKey);
    await customers.catchUp();
    await log.compact();
    expect(filesContaining(path, ALICE_EMAIL)).toEqual([]);
    expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED });
  });
});
