/**
 * What other processes on the same LMDB store see and do: the tests that start a child process.
 * The same rules between logs of one process, on every engine, are in the contract suite.
 */
import { describe, expect, it } from 'vitest';
import { openLog, type EffectEvent, type Identity } from '../src/index.ts';
import { expectShredSeenAtOnce, identityArg, newMasterKey, runChild, spawnChild } from './support/crypto-fixtures.ts';
import { tempDir } from './support/temp-log.ts';

const aliceKey: Identity = ['user', 'alice'];

describe('shredding a key', () => {
  it('is seen at once by another process that has the store open and has read the plaintext', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    try {
      await expectShredSeenAtOnce(log, async () => {
        const effect = await runChild<EffectEvent>('crypto-shred.ts', [path, identityArg(aliceKey)]);
        return { ...effect, timestamp: new Date(effect.timestamp) };
      });
    } finally {
      await log.close();
    }
  });
});

describe('autoExpire', () => {
  it('does not keep the process alive with its timers', async () => {
    const path = tempDir();
    const child = spawnChild('crypto-idle.ts', [path, newMasterKey()]);
    await child.line('ready');
    const readyAt = Date.now();
    const exit = await Promise.race([child.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5000))]);
    if (exit === 'still running') child.process.kill('SIGKILL');
    expect(exit).toBe(0);
    expect(Date.now() - readyAt).toBeLessThan(5000);
  });
});

describe('a second log of one process on a store', () => {
  it('opens while the first has a transaction in flight, instead of hanging the process', async () => {
    const child = spawnChild('open-while-writing.ts', [tempDir()]);
    const exit = await Promise.race([child.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    if (exit === 'still running') child.process.kill('SIGKILL');
    expect(exit).toBe(0);
    expect(await child.line('opened ')).toBe('opened 20');
  });
});
