/**
 * What other processes on the same LMDB store see and do: the tests that start a child process.
 * The same rules between logs of one process, on every engine, are in the contract suite.
 */
import { describe, expect, it } from 'vitest';
import { KeyDestroyedError, openLog, type EffectEvent, type Identity, type NewAction } from '../src/index.ts';
import { appendOk, identityArg, newMasterKey, patchOf, rejection, runChild, spawnChild } from './support/crypto-fixtures.ts';
import { action, allEvents, tempDir } from './support/temp-log.ts';

const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

function encrypted(aggregate: Identity, key: Identity, email: string): NewAction {
  return action(aggregate, [{ op: 'add', path: '/email', value: email }], { encrypt: { key } });
}

describe('shredding a key', () => {
  it('is seen at once by another process that has the store open and has read the plaintext', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    try {
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      // The plaintext was read, so the unwrapped key sits in this process's cache.
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
      expect((await log.state(alice)).state).toEqual({ email: 'alice@example.com' });

      const effect = await runChild<EffectEvent>('crypto-shred.ts', [path, identityArg(aliceKey)]);
      expect(effect).toMatchObject({ seq: 3, source: 'keystore', effect: { reason: 'shredded', trigger: aliceKey } });

      // Same open log, no reopen: every read now redacts.
      expect(patchOf(await log.get(1))[0]?.value).toBeNull();
      expect(await log.state(alice)).toEqual({ state: { email: null }, head: 3 });
      const events = await allEvents(log);
      expect(events.map((e) => ('action' in e ? e.action.patch[0] : e.effect))).toEqual([
        { op: 'add', path: '/email', value: null },
        { op: 'add', path: '/email', value: 'bob@example.com' },
        { reason: 'shredded', trigger: aliceKey },
      ]);
      expect(await log.conflicts(2, alice)).toEqual([{ ...effect, timestamp: new Date(effect.timestamp) }]);
      expect(await log.keys.get(aliceKey)).toMatchObject({ reason: 'shredded', destroyedAt: expect.any(Date) });
      expect(await rejection(log.append([encrypted(alice, aliceKey, 'again@example.com')], { base: 3 }))).toBeInstanceOf(KeyDestroyedError);
      expect(await rejection(log.keys.shred(aliceKey))).toBeInstanceOf(KeyDestroyedError);
      expect(await log.head()).toBe(3);
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
