import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, KeyDestroyedError, type Identity, type Log } from '../../src/index.ts';
import { appendOk, DAY_MS, encrypted, manualClock, newMasterKey, notDurations, patchOf, rejection, storeSnapshot } from '../support/crypto-fixtures.ts';
import { action, allEvents, type LogOptions } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];
const carolKey: Identity = ['user', 'carol'];

/** Lets tests hand the log what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

async function keyedLog(engine: TestEngine, options: Pick<LogOptions, 'keyTtl'> = {}) {
  const clock = manualClock('2024-01-31T12:00:00.000Z');
  const { log, reopen } = await engine.tempLog({ masterKey: newMasterKey(), clock: clock.read, ...options });
  return { log, reopen, clock };
}

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`nothing within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function effectsOf(log: Log) {
  return (await allEvents(log)).filter((e) => 'effect' in e);
}

export function keyExpiry(engine: TestEngine): void {
  describe('expiry by the clock', () => {
    it('decrypts nothing with a key past its expiresAt, even before expire() has run', async () => {
      const { log, clock } = await keyedLog(engine);
      await log.keys.create(aliceKey, { ttl: { days: 30 } });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);

      clock.advance(30 * DAY_MS - 1);
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');

      clock.advance(2);
      expect(patchOf(await log.get(1))[0]?.value).toBeNull();
      expect(await log.state(alice)).toEqual({ state: { email: null }, head: 2 });
      expect((await allEvents(log)).map((e) => patchOf(e)[0]?.value)).toEqual([null, 'bob@example.com']);
      expect(await log.conflicts(0, alice)).toMatchObject([{ seq: 1, action: { patch: [{ value: null }] } }]);
      // Not destroyed yet, and no effect written: only the clock made it unusable.
      expect(await log.keys.get(aliceKey)).toEqual({ key: aliceKey, createdAt: new Date('2024-01-31T12:00:00.000Z'), expiresAt: new Date('2024-03-01T12:00:00.000Z') });
      expect(await log.head()).toBe(2);
    });

    it('refuses to encrypt with a key past its expiry, before expire() too, writing nothing', async () => {
      const { log, clock } = await keyedLog(engine);
      await log.keys.create(aliceKey, { ttl: { hours: 1 } });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      clock.advance(60 * 60 * 1000);
      const before = await storeSnapshot(log);
      const error = await rejection(log.append([encrypted(alice, aliceKey, 'later@example.com')], { base: 1 }));
      expect(error).toBeInstanceOf(KeyDestroyedError);
      // Creating it again is refused too (it exists, though not yet destroyed).
      expect(await rejection(log.keys.create(aliceKey))).toMatchObject({ code: expect.stringMatching(/^(INVALID_ARGUMENT|KEY_DESTROYED)$/) });
      expect(await storeSnapshot(log)).toEqual(before);
    });

    it('shreds with expire() every key past its expiry, appending key-expired effects from the keystore', async () => {
      const { log, clock } = await keyedLog(engine);
      const createdAt = clock.now;
      await log.keys.create(aliceKey, { ttl: { days: 1 } });
      await log.keys.create(bobKey, { ttl: { days: 3 } });
      await log.keys.create(carolKey);
      await log.keys.create(['user', 'dave'], { ttl: { days: 1 } });
      await log.keys.shred(['user', 'dave']);
      await appendOk(log, [
        encrypted(alice, aliceKey, 'alice@example.com'),
        encrypted(bob, bobKey, 'bob@example.com'),
        encrypted(['customer', 'carol'], carolKey, 'carol@example.com'),
      ]);
      expect(await log.keys.expire()).toEqual([]);
      expect(await log.head()).toBe(4);

      clock.advance(2 * DAY_MS);
      const effects = await log.keys.expire();
      expect(effects).toEqual([{ seq: 5, timestamp: clock.now, source: 'keystore', effect: { reason: 'key-expired', trigger: aliceKey } }]);
      expect(await log.get(5)).toEqual(effects[0]);
      expect(await log.keys.get(aliceKey)).toEqual({
        key: aliceKey,
        createdAt,
        expiresAt: new Date(createdAt.getTime() + DAY_MS),
        destroyedAt: clock.now,
        reason: 'key-expired',
      });
      expect(await log.keys.get(bobKey)).not.toHaveProperty('destroyedAt');
      expect(await log.keys.get(['user', 'dave'])).toMatchObject({ reason: 'shredded' });
      // The effect affects the aggregate that had the key's ciphertext.
      expect(await log.conflicts(4, alice)).toEqual(effects);
      expect(await log.conflicts(4, bob)).toEqual([]);
      // Nothing is due twice.
      expect(await log.keys.expire()).toEqual([]);
      expect(await rejection(log.keys.shred(aliceKey))).toBeInstanceOf(KeyDestroyedError);

      clock.advance(2 * DAY_MS);
      expect((await log.keys.expire()).map((e) => [e.seq, e.effect])).toEqual([[6, { reason: 'key-expired', trigger: bobKey }]]);
      expect((await allEvents(log)).map((e) => ('action' in e ? patchOf(e)[0]?.value : e.effect.trigger))).toEqual([
        ['user', 'dave'],
        null,
        null,
        'carol@example.com',
        aliceKey,
        bobKey,
      ]);
      expect(await log.verify()).toEqual({ ok: true, events: 6 });
    });

    it('expires in one call several keys due at once, in one effect each', async () => {
      const { log, clock } = await keyedLog(engine);
      for (const key of [aliceKey, bobKey, carolKey]) await log.keys.create(key, { ttl: { minutes: 5 } });
      clock.advance(10 * 60 * 1000);
      const effects = await log.keys.expire();
      expect(effects.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(new Set(effects.map((e) => JSON.stringify(e.effect.trigger)))).toEqual(new Set([aliceKey, bobKey, carolKey].map((k) => JSON.stringify(k))));
      expect(effects.every((e) => e.effect.reason === 'key-expired' && e.source === 'keystore')).toBe(true);
    });

    it('shreds the keys due at or before the date given to expire(), and only those', async () => {
      const { log, clock } = await keyedLog(engine);
      await log.keys.create(aliceKey, { expiresAt: new Date('2024-02-10T00:00:00.000Z') });
      await log.keys.create(bobKey, { expiresAt: new Date('2024-02-20T00:00:00.000Z') });
      expect(await log.keys.expire(new Date('2024-02-09T23:59:59.999Z'))).toEqual([]);
      const effects = await log.keys.expire(new Date('2024-02-10T00:00:00.000Z'));
      expect(effects.map((e) => e.effect)).toEqual([{ reason: 'key-expired', trigger: aliceKey }]);
      // The record and the effect carry the log's clock, when the key was destroyed.
      expect(effects[0]?.timestamp).toEqual(clock.now);
      expect(await log.keys.get(aliceKey)).toMatchObject({ destroyedAt: clock.now, reason: 'key-expired' });
      expect(await log.keys.get(bobKey)).not.toHaveProperty('destroyedAt');
    });

    it('refuses an invalid date for expire(), writing nothing', async () => {
      const { log, clock } = await keyedLog(engine);
      await log.keys.create(aliceKey, { ttl: { days: 1 } });
      clock.advance(2 * DAY_MS);
      const before = await storeSnapshot(log);
      for (const now of [new Date(Number.NaN), '2024-02-10', 1707523200000, null]) {
        expect(await rejection(log.keys.expire(loose<Date>(now))), String(now)).toBeInstanceOf(InvalidArgumentError);
      }
      expect(await storeSnapshot(log)).toEqual(before);
    });
  });

  describe('expiry dates', () => {
    it('gives implicitly created keys the keyTtl of the log, counted by date-fns', async () => {
      const { log, clock } = await keyedLog(engine, { keyTtl: { months: 1 } });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      // January 31st plus one month is February 29th, 2024.
      expect(await log.keys.get(aliceKey)).toEqual({ key: aliceKey, createdAt: clock.now, expiresAt: new Date('2024-02-29T12:00:00.000Z') });

      clock.advance(DAY_MS);
      await appendOk(log, [encrypted(bob, bobKey, 'bob@example.com')]);
      expect(await log.keys.get(bobKey)).toMatchObject({ expiresAt: new Date('2024-03-01T12:00:00.000Z') });

      clock.now = new Date('2024-02-29T12:00:00.000Z');
      expect((await allEvents(log)).map((e) => patchOf(e)[0]?.value)).toEqual([null, 'bob@example.com']);
      expect((await log.keys.expire()).map((e) => e.effect.trigger)).toEqual([aliceKey]);
    });

    it('gives no expiry to implicitly created keys without keyTtl', async () => {
      const { log, clock } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      expect(await log.keys.get(aliceKey)).toEqual({ key: aliceKey, createdAt: clock.now });
      clock.advance(1000 * 365 * DAY_MS);
      expect(await log.keys.expire()).toEqual([]);
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
    });

    it('lets keys.create choose a ttl or an expiresAt other than the keyTtl', async () => {
      const { log, clock } = await keyedLog(engine, { keyTtl: { days: 7 } });
      expect(await log.keys.create(aliceKey, { ttl: { hours: 36 } })).toMatchObject({ expiresAt: new Date('2024-02-02T00:00:00.000Z') });
      const expiresAt = new Date('2024-01-31T12:00:00.001Z');
      expect(await log.keys.create(bobKey, { expiresAt })).toEqual({ key: bobKey, createdAt: clock.now, expiresAt });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      clock.advance(1);
      expect((await allEvents(log)).map((e) => patchOf(e)[0]?.value)).toEqual(['alice@example.com', null]);
    });

    it('refuses a ttl that is not a date-fns Duration with InvalidArgumentError, changing nothing', async () => {
      const { log } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const before = await storeSnapshot(log);
      for (const ttl of notDurations) {
        const argument = structuredClone(ttl);
        const error = await rejection(log.keys.create(bobKey, loose<{ ttl: { days: number } }>({ ttl: argument })));
        expect(error, JSON.stringify(ttl)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(/ttl/);
        expect(argument).toEqual(ttl);
      }
      expect(await storeSnapshot(log)).toEqual(before);
    });

    it('refuses a keyTtl that is not a date-fns Duration at openLog, recording nothing in the store', async () => {
      const { reopen } = await engine.tempLog();
      for (const keyTtl of notDurations) {
        const error = await rejection(reopen({ masterKey: newMasterKey(), keyTtl: loose<{ days: number }>(keyTtl) }));
        expect(error, JSON.stringify(keyTtl)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(/keyTtl/);
      }
      // No master key was taken as the store's: any other one still opens it.
      expect(await (await reopen({ masterKey: newMasterKey() })).head()).toBe(0);
    });

    it('refuses an expiry in the past or at the present, an invalid expiresAt, or both expiresAt and ttl, changing nothing', async () => {
      const { log, clock } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const before = await storeSnapshot(log);
      for (const options of [
        { expiresAt: new Date(clock.now.getTime() - 1) },
        { expiresAt: new Date(clock.now.getTime()) },
        { expiresAt: new Date('2000-01-01T00:00:00.000Z') },
        { expiresAt: new Date(Number.NaN) },
        { expiresAt: '2030-01-01T00:00:00.000Z' },
        { expiresAt: 1893456000000 },
        { expiresAt: new Date('2030-01-01T00:00:00.000Z'), ttl: { days: 1 } },
      ]) {
        const error = await rejection(log.keys.create(bobKey, loose<{ expiresAt: Date }>(options)));
        expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(/options/);
      }
      expect(await storeSnapshot(log)).toEqual(before);
      expect(await log.keys.get(bobKey)).toBeUndefined();
    });
  });

  describe('autoExpire', () => {
    it('shreds a key at its expiry by itself, appending the effect', async () => {
      const { log } = await engine.tempLog({ masterKey: newMasterKey(), autoExpire: true });
      const expiresAt = new Date(Date.now() + 300);
      await log.keys.create(aliceKey, { expiresAt });
      await log.keys.create(bobKey, { ttl: { days: 1 } });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');

      const effect = await eventually(async () => (await effectsOf(log))[0], 5000);
      expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime());
      expect(effect).toMatchObject({ seq: 3, source: 'keystore', effect: { reason: 'key-expired', trigger: aliceKey } });
      expect(await log.keys.get(aliceKey)).toMatchObject({ expiresAt, destroyedAt: expect.any(Date), reason: 'key-expired' });
      expect(await log.keys.get(bobKey)).not.toHaveProperty('destroyedAt');
      expect(patchOf(await log.get(1))[0]?.value).toBeNull();
      expect(patchOf(await log.get(2))[0]?.value).toBe('bob@example.com');
      expect(await log.head()).toBe(3);
    });

    it('re-arms its timer for a key created later that expires sooner', async () => {
      const { log } = await engine.tempLog({ masterKey: newMasterKey(), autoExpire: true });
      await log.keys.create(bobKey, { ttl: { days: 1 } });
      await appendOk(log, [encrypted(bob, bobKey, 'bob@example.com')]);
      await log.keys.create(aliceKey, { expiresAt: new Date(Date.now() + 250) });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const effect = await eventually(async () => (await effectsOf(log))[0], 5000);
      expect(effect).toMatchObject({ seq: 3, effect: { reason: 'key-expired', trigger: aliceKey } });
      expect(await log.keys.get(bobKey)).not.toHaveProperty('destroyedAt');
    });

    it('shreds a key created implicitly with the keyTtl', async () => {
      // Several logs at once, since the timer must be re-armed right after the key is written.
      const logs = await Promise.all([1, 2, 3].map(async () => (await engine.tempLog({ masterKey: newMasterKey(), autoExpire: true, keyTtl: { seconds: 0.3 } })).log));
      await Promise.all(logs.map(async (log) => {
        await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
        expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
      }));
      const effects = await Promise.all(logs.map((log) => eventually(async () => (await effectsOf(log))[0], 3000).catch(() => undefined)));
      expect(effects).toMatchObject([1, 2, 3].map(() => ({ seq: 2, source: 'keystore', effect: { reason: 'key-expired', trigger: aliceKey } })));
      for (const log of logs) expect(patchOf(await log.get(1))[0]?.value).toBeNull();
    });

    it('stops with close(): a closed log shreds nothing', async () => {
      const masterKey = newMasterKey();
      const { log, reopen } = await engine.tempLog({ masterKey, autoExpire: true });
      await log.keys.create(aliceKey, { expiresAt: new Date(Date.now() + 150) });
      await log.close();
      await new Promise((resolve) => setTimeout(resolve, 400));
      const reopened = await reopen({ masterKey });
      expect(await reopened.head()).toBe(0);
      expect(await reopened.keys.get(aliceKey)).not.toHaveProperty('destroyedAt');
    });
  });
}
