import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, LogClosedError, type Identity } from '../../src/index.ts';
import { appendOk, encrypted, newMasterKey, patchOf, rejection, storeSnapshot } from '../support/crypto-fixtures.ts';
import { action, allEvents } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

export function compact(engine: TestEngine): void {
  describe('compact', () => {
    it('keeps verify ok and the data readable after shredding and after compacting, and the log goes on', async () => {
      const masterKey = newMasterKey();
      const { log, reopen } = await engine.tempLog({ masterKey });
      await log.keys.create(['user', 'later'], { ttl: { days: 1 } });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/name', value: 'Alice' }])]);
      await log.keys.shred(aliceKey, { reason: 'erasure request' });
      expect(await log.verify()).toEqual({ ok: true, events: 4 });
      const before = await storeSnapshot(log);

      await log.compact();
      expect(await log.verify()).toEqual({ ok: true, events: 4 });
      expect(await storeSnapshot(log)).toEqual(before);
      expect(await log.state(alice)).toEqual({ state: { email: null, name: 'Alice' }, head: 4 });
      expect(await log.state(bob)).toEqual({ state: { email: 'bob@example.com' }, head: 4 });

      // Appends, shreds and a second compaction carry on the same chain.
      await appendOk(log, [encrypted(bob, bobKey, 'bob2@example.com'), encrypted(['customer', 'carol'], ['user', 'carol'], 'carol@example.com')]);
      await log.keys.shred(bobKey);
      await log.compact();
      expect(await log.verify()).toEqual({ ok: true, events: 7 });
      expect((await allEvents(log)).map((e) => ('action' in e ? patchOf(e)[0]?.value : e.effect.trigger))).toEqual([
        null,
        null,
        'Alice',
        aliceKey,
        null,
        'carol@example.com',
        bobKey,
      ]);
      expect(await log.keys.expire(new Date(Date.now() + 2 * 24 * 3600 * 1000))).toMatchObject([{ seq: 8, effect: { trigger: ['user', 'later'] } }]);
      await log.close();
      // The compacted store opens again like any other.
      const reopened = await reopen({ masterKey });
      expect(await reopened.verify()).toEqual({ ok: true, events: 8 });
      expect(patchOf(await reopened.get(6))[0]?.value).toBe('carol@example.com');
      await reopened.close();
      expect(await rejection(reopened.compact())).toBeInstanceOf(LogClosedError);
    });

    it('reports its progress to onProgress, ending with everything copied, and refuses an onProgress that is not a function', async () => {
      const { log } = await engine.tempLog({ masterKey: newMasterKey() });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      await log.keys.shred(aliceKey);
      await log.projection('customers').catchUp();
      const calls: [number, number][] = [];
      await log.compact({ onProgress: (done, total) => calls.push([done, total]) });
      expect(calls.length).toBeGreaterThan(0);
      const [done, total] = calls.at(-1) as [number, number];
      expect(done).toBe(total);
      expect(calls.every(([copied, all]) => copied >= 0 && copied <= all && all === total)).toBe(true);
      await expect(log.compact({ onProgress: 1 as never })).rejects.toThrow(InvalidArgumentError);
      expect(await log.verify()).toEqual({ ok: true, events: 3 });
    });
  });
}
