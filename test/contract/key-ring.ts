import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  KeyDestroyedError,
  type Identity,
  type Log,
} from '../../src/index.ts';
import { appendOk, encrypted, expectShredSeenAtOnce, manualClock, newMasterKey, patchOf, rejection, storeSnapshot } from '../support/crypto-fixtures.ts';
import { action, allEvents } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const order: Identity = ['order', 1001];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

/** Lets tests hand the log what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

async function keyedLog(engine: TestEngine) {
  const clock = manualClock('2024-01-31T12:00:00.000Z');
  const masterKey = newMasterKey();
  const { log, reopen } = await engine.tempLog({ masterKey, clock: clock.read });
  return { log, reopen, clock, masterKey };
}

async function keyList(log: Log, options?: { destroyed?: boolean }) {
  const infos = [];
  for await (const info of log.keys.list(options)) infos.push(info);
  return infos;
}

export function keyRing(engine: TestEngine): void {
  describe('creating and inspecting keys', () => {
    it('creates a key without expiry, with a ttl counted by date-fns, or with an explicit expiresAt', async () => {
      const { log, clock } = await keyedLog(engine);
      const createdAt = clock.now;
      expect(await log.keys.create(aliceKey)).toEqual({ key: aliceKey, createdAt });
      // One month from January 31st is February 29th in 2024 (date-fns clamps to the month's end).
      expect(await log.keys.create(bobKey, { ttl: { months: 1 } })).toEqual({ key: bobKey, createdAt, expiresAt: new Date('2024-02-29T12:00:00.000Z') });
      const expiresAt = new Date('2030-01-01T00:00:00.000Z');
      expect(await log.keys.create(['user', 7], { expiresAt })).toEqual({ key: ['user', 7], createdAt, expiresAt });
      expect(await log.keys.create(['user', 'dave'], { ttl: { days: 1, hours: 2, minutes: 3, seconds: 4, weeks: 1, years: 1 } })).toMatchObject({
        expiresAt: new Date('2025-02-08T14:03:04.000Z'),
      });

      expect(await log.keys.get(bobKey)).toEqual({ key: bobKey, createdAt, expiresAt: new Date('2024-02-29T12:00:00.000Z') });
      expect(await log.keys.get(['user', 'nobody'])).toBeUndefined();
      // Creating a key writes no event.
      expect(await log.head()).toBe(0);
    });

    it('encrypts with a key created beforehand, which keeps its expiry', async () => {
      const { log } = await keyedLog(engine);
      const info = await log.keys.create(aliceKey, { ttl: { days: 30 } });
      const [event] = await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      expect(patchOf(event)[0]?.value).toBe('alice@example.com');
      expect(await log.keys.get(aliceKey)).toEqual(info);
      expect(await keyList(log)).toEqual([info]);
    });

    it('creates the key on the first encryption with it, once, under the log clock', async () => {
      const { log, clock } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'a@example.com'), encrypted(order, aliceKey, 'a@example.com')]);
      clock.advance(1000);
      await appendOk(log, [encrypted(alice, aliceKey, 'a2@example.com')]);
      expect(await keyList(log)).toEqual([{ key: aliceKey, createdAt: new Date('2024-01-31T12:00:00.000Z') }]);
    });

    it('lists every key, or only the destroyed or only the live ones', async () => {
      const { log, clock } = await keyedLog(engine);
      const createdAt = clock.now;
      await log.keys.create(aliceKey);
      await log.keys.create(bobKey);
      await log.keys.create(['user', 'carol']);
      clock.advance(60_000);
      await log.keys.shred(bobKey);
      const destroyed = { key: bobKey, createdAt, destroyedAt: clock.now, reason: 'shredded' };
      const live = [{ key: aliceKey, createdAt }, { key: ['user', 'carol'], createdAt }];
      expect(await keyList(log, { destroyed: true })).toEqual([destroyed]);
      expect(await keyList(log, { destroyed: false })).toEqual(live);
      expect(new Set((await keyList(log)).map((info) => JSON.stringify(info)))).toEqual(new Set([destroyed, ...live].map((info) => JSON.stringify(info))));
      expect(await keyList(log, {})).toHaveLength(3);
    });

    it('refuses to create a key that exists already with InvalidArgumentError, keeping the first', async () => {
      const { log } = await keyedLog(engine);
      const first = await log.keys.create(aliceKey, { ttl: { days: 1 } });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const before = await storeSnapshot(log);
      expect(await rejection(log.keys.create(aliceKey))).toBeInstanceOf(InvalidArgumentError);
      expect(await storeSnapshot(log)).toEqual(before);
      expect(await log.keys.get(aliceKey)).toEqual(first);
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
    });
  });

  describe('bad arguments of the key ring', () => {
    const badIdentities: unknown[] = [
      undefined,
      null,
      'alice',
      ['user'],
      ['user', 'alice', 'extra'],
      ['', 'alice'],
      ['user', ''],
      [1, 'alice'],
      ['user', 1.5],
      ['user', Number.NaN],
      ['user', 2 ** 53],
      ['user', null],
      ['user', { id: 1 }],
      ['user\u0000', 'alice'],
      ['user', '\ud800'],
    ];

    it('refuses a bad key identity in create, get and shred with InvalidArgumentError, changing nothing', async () => {
      const { log } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const before = await storeSnapshot(log);
      for (const identity of badIdentities) {
        const argument = structuredClone(identity);
        for (const call of [
          () => log.keys.create(loose<Identity>(argument)),
          () => log.keys.create(loose<Identity>(argument), { ttl: { days: 1 } }),
          () => log.keys.get(loose<Identity>(argument)),
          () => log.keys.shred(loose<Identity>(argument)),
        ]) {
          const error = await rejection(call());
          expect(error, JSON.stringify(identity)).toBeInstanceOf(InvalidArgumentError);
          expect((error as Error).message).toMatch(/^key/);
        }
        // The argument is not mutated.
        expect(argument).toEqual(identity);
      }
      expect(await storeSnapshot(log)).toEqual(before);
    });

    it('refuses an empty or non-string reason or source of shred, and unknown options, changing nothing', async () => {
      const { log } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const before = await storeSnapshot(log);
      for (const options of [{ reason: '' }, { source: '' }, { reason: 42 }, { source: null }, 'shredded', null]) {
        const error = await rejection(log.keys.shred(aliceKey, loose<{ reason: string }>(options)));
        expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      }
      for (const options of [{ expires: new Date('2030-01-01') }, 'tomorrow', null]) {
        expect(await rejection(log.keys.create(bobKey, loose<{ ttl: { days: number } }>(options))), JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      }
      expect(await rejection(keyList(log, loose<{ destroyed: boolean }>({ destroyed: 'yes' })))).toBeInstanceOf(InvalidArgumentError);
      expect(await storeSnapshot(log)).toEqual(before);
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
    });
  });

  describe('shredding a key', () => {
    it('destroys the key and appends the effect, with reason shredded and source keystore by default', async () => {
      const { log, clock } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      clock.advance(5000);
      const effect = await log.keys.shred(aliceKey);
      expect(effect).toEqual({ seq: 2, timestamp: clock.now, source: 'keystore', effect: { reason: 'shredded', trigger: aliceKey } });
      expect(await log.head()).toBe(2);
      expect(await log.get(2)).toEqual(effect);
      expect(await log.keys.get(aliceKey)).toEqual({ key: aliceKey, createdAt: new Date('2024-01-31T12:00:00.000Z'), destroyedAt: clock.now, reason: 'shredded' });
      expect(patchOf(await log.get(1))[0]?.value).toBeNull();
    });

    it('takes a custom reason and source for the effect and the key record', async () => {
      const { log, clock } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const effect = await log.keys.shred(aliceKey, { reason: 'erasure request #42', source: 'gdpr-desk' });
      expect(effect).toEqual({ seq: 2, timestamp: clock.now, source: 'gdpr-desk', effect: { reason: 'erasure request #42', trigger: aliceKey } });
      expect(await log.keys.get(aliceKey)).toMatchObject({ destroyedAt: clock.now, reason: 'erasure request #42' });
      // Only one of the two may be given.
      const second = await log.keys.shred(bobKey, { source: 'gdpr-desk' });
      expect(second.effect).toEqual({ reason: 'shredded', trigger: bobKey });
    });

    it('affects every aggregate that had an action encrypted with the key, so conflicts from before the shred include the effect', async () => {
      const { log } = await keyedLog(engine);
      await appendOk(log, [
        encrypted(alice, aliceKey, 'alice@example.com'),
        encrypted(order, aliceKey, 'ship to alice'),
        encrypted(bob, bobKey, 'bob@example.com'),
        action(['customer', 'carol'], [{ op: 'add', path: '/name', value: 'Carol' }]),
      ]);
      const effect = await log.keys.shred(aliceKey);
      expect(effect.seq).toBe(5);
      expect(await log.conflicts(4, alice)).toEqual([effect]);
      expect(await log.conflicts(4, order)).toEqual([effect]);
      expect(await log.conflicts(4, bob)).toEqual([]);
      expect(await log.conflicts(4, ['customer', 'carol'])).toEqual([]);
      // An append based before the shred must resolve it.
      const result = await log.append([action(alice, [{ op: 'add', path: '/email', value: 'again@example.com' }])], { base: 4 });
      expect(result).toMatchObject({ status: 'conflict', conflicts: [{ theirs: effect }] });
      expect(await log.append([action(alice, [{ op: 'add', path: '/email', value: 'again@example.com' }])], { base: 4, resolved: [5] })).toMatchObject({ status: 'ok' });
    });

    it('refuses to shred a key twice with KeyDestroyedError, writing nothing', async () => {
      const { log, clock } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      await log.keys.shred(aliceKey, { reason: 'first' });
      const before = await storeSnapshot(log);
      clock.advance(1000);
      const error = await rejection(log.keys.shred(aliceKey, { reason: 'second' }));
      expect(error).toBeInstanceOf(KeyDestroyedError);
      expect(error).toMatchObject({ code: 'KEY_DESTROYED' });
      expect(await storeSnapshot(log)).toEqual(before);
      expect(await log.keys.get(aliceKey)).toMatchObject({ reason: 'first' });
    });

    it('never reuses a destroyed key: encrypting with it or creating it again throws KeyDestroyedError and writes nothing', async () => {
      const { log } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      await log.keys.shred(aliceKey);
      const before = await storeSnapshot(log);
      const attempts = [
        () => log.append([encrypted(alice, aliceKey, 'alice-again@example.com')], { base: 2 }),
        // Even mixed into a batch with a fresh key: nothing of the batch is written, no key created.
        () => log.append([encrypted(bob, bobKey, 'bob@example.com'), encrypted(alice, aliceKey, 'alice-again@example.com')], { base: 2 }),
        () => log.append([encrypted(alice, aliceKey, 'alice-again@example.com')], { base: 2, dryRun: true }),
        () => log.keys.create(aliceKey),
        () => log.keys.create(aliceKey, { ttl: { days: 1 } }),
      ];
      for (const attempt of attempts) {
        expect(await rejection(attempt())).toBeInstanceOf(KeyDestroyedError);
        expect(await storeSnapshot(log)).toEqual(before);
      }
    });

    it('refuses, writing nothing, an append under a key another log on the store shredded after this one encrypted with it', async () => {
      const { log, reopen } = await keyedLog(engine);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      const other = await reopen();
      await other.keys.shred(aliceKey);
      await other.close();
      const before = await storeSnapshot(log);
      for (const events of [[encrypted(alice, aliceKey, 'alice-again@example.com')], [encrypted(bob, bobKey, 'bob@example.com'), encrypted(alice, aliceKey, 'alice-again@example.com')]]) {
        expect(await rejection(log.append(events, { base: 2 }))).toBeInstanceOf(KeyDestroyedError);
        expect(await storeSnapshot(log)).toEqual(before);
      }
    });

    it('refuses, writing nothing, an append under a key this log has appended under again and again, once another log shredded it', async () => {
      const { log, reopen } = await keyedLog(engine);
      for (let i = 0; i < 3; i++) await appendOk(log, [encrypted(alice, aliceKey, `alice-${i}@example.com`)]);
      const other = await reopen();
      await other.keys.shred(bobKey);
      await appendOk(log, [encrypted(alice, aliceKey, 'alice-3@example.com')]);
      await other.keys.shred(aliceKey);
      // Looked at through the other log: a read through this one would see the shred itself.
      const before = await storeSnapshot(other);
      for (const events of [[encrypted(alice, aliceKey, 'alice-again@example.com')], [encrypted(['customer', 'dave'], ['user', 'dave'], 'dave@example.com'), encrypted(alice, aliceKey, 'alice-again@example.com')]]) {
        expect(await rejection(log.append(events, { base: 6 }))).toBeInstanceOf(KeyDestroyedError);
        expect(await storeSnapshot(other)).toEqual(before);
      }
      await other.close();
    });

    it('refuses inside its write an append under a key shredded meanwhile, and still commits the appends made beside it', async () => {
      const { log, reopen } = await keyedLog(engine);
      for (let i = 0; i < 2; i++) await appendOk(log, [encrypted(alice, aliceKey, `alice-${i}@example.com`)]);
      const other = await reopen();
      await other.keys.shred(aliceKey);
      const [refused, beside, after] = await Promise.allSettled([
        log.append([encrypted(alice, aliceKey, 'alice-again@example.com')], { base: 3 }),
        log.append([action(order, [{ op: 'add', path: '/total', value: 12 }])], { base: 3 }),
        log.append([action(bob, [{ op: 'add', path: '/name', value: 'Bob' }])], { base: 3 }),
      ]);
      expect(refused.status === 'rejected' && refused.reason).toBeInstanceOf(KeyDestroyedError);
      expect(beside).toMatchObject({ status: 'fulfilled', value: { status: 'ok' } });
      expect(after).toMatchObject({ status: 'fulfilled', value: { status: 'ok' } });
      const events = await allEvents(other);
      expect(events.map((event) => ('action' in event ? event.action.aggregate : 'effect'))).toEqual([alice, alice, 'effect', order, bob]);
      expect(await other.verify()).toEqual({ ok: true, events: 5 });
      await other.close();
    });

    it('refuses an append under a key that this log shreds just before it, in the same turn, writing nothing of it', async () => {
      const { log } = await keyedLog(engine);
      for (let i = 0; i < 2; i++) await appendOk(log, [encrypted(alice, aliceKey, `alice-${i}@example.com`)]);
      // A write ahead of them, so that on engines that group writes the two meet in one group.
      const ahead = log.append([action(order, [{ op: 'add', path: '/total', value: 12 }])], { base: 2 });
      const shred = log.keys.shred(aliceKey);
      const refused = rejection(log.append([encrypted(alice, aliceKey, 'alice-again@example.com')], { base: 4 }));
      expect(await ahead).toMatchObject({ status: 'ok', events: [{ seq: 3 }] });
      expect(await shred).toMatchObject({ seq: 4, effect: { trigger: aliceKey } });
      expect(await refused).toBeInstanceOf(KeyDestroyedError);
      expect(await log.head()).toBe(4);
      expect((await allEvents(log)).map((event) => ('action' in event ? patchOf(event)[0]?.value : 'effect'))).toEqual([null, null, 12, 'effect']);
    });

    it('records a key that never existed as destroyed, so that it can never be created', async () => {
      const { log, clock } = await keyedLog(engine);
      const effect = await log.keys.shred(aliceKey, { reason: 'never again' });
      expect(effect).toMatchObject({ seq: 1, effect: { reason: 'never again', trigger: aliceKey } });
      expect(await log.keys.get(aliceKey)).toEqual({ key: aliceKey, createdAt: clock.now, destroyedAt: clock.now, reason: 'never again' });
      expect(await rejection(log.keys.create(aliceKey))).toBeInstanceOf(KeyDestroyedError);
      expect(await rejection(log.append([encrypted(alice, aliceKey, 'alice@example.com')], { base: 1 }))).toBeInstanceOf(KeyDestroyedError);
      expect(await log.head()).toBe(1);
    });

    it('writes no ciphertext under a key after its effect, however appends race the shred', async () => {
      const { log } = await keyedLog(engine);
      const turns = (n: number) => Array.from({ length: n }).reduce<Promise<void>>((p) => p.then(() => new Promise((r) => setImmediate(r))), Promise.resolve());
      const outcomes = new Set<string>();
      for (let round = 0; round < 24; round++) {
        const key: Identity = ['user', `racer-${round}`];
        await log.keys.create(key);
        // Appends start one event-loop turn apart; the shred starts among them, at a different turn each round.
        const appends = Array.from({ length: 6 }, (_, i) =>
          turns(i).then(() => log.append([encrypted(['customer', `racer-${round}-${i}`], key, `racer-${round}-${i}@example.com`)], { base: 0 })).then(
            (result) => result.status,
            (error: unknown) => {
              if (error instanceof KeyDestroyedError) return 'destroyed';
              throw error;
            },
          ),
        );
        const shred = turns(round % 8).then(() => log.keys.shred(key));
        const [effect, statuses] = await Promise.all([shred, Promise.all(appends)]);
        outcomes.add(statuses.join(','));
        const linked = (await allEvents(log)).filter((e) => 'action' in e && e.triggers.some((t) => t[1] === key[1]));
        expect(statuses.filter((s) => s === 'ok')).toHaveLength(linked.length);
        expect(statuses.filter((s) => s === 'ok').length + statuses.filter((s) => s === 'destroyed').length).toBe(6);
        for (const event of linked) {
          expect(event.seq).toBeLessThan(effect.seq);
          expect(patchOf(event)[0]?.value).toBeNull();
        }
      }
      // The race was real: some rounds saw appends land on both sides of the shred.
      expect([...outcomes].some((o) => o.includes('ok') && o.includes('destroyed'))).toBe(true);
      expect(await log.verify()).toMatchObject({ ok: true });
    });

    it('is seen at once by another log open on the same store that has read the plaintext', async () => {
      const { log, reopen } = await keyedLog(engine);
      await expectShredSeenAtOnce(log, async () => {
        // Another log on the store, without the master key, as a separate keystore would be.
        const other = await reopen();
        const effect = await other.keys.shred(aliceKey);
        await other.close();
        return effect;
      });
    });
  });
}
