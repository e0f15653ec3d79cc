/**
 * SPEC 15: logs opened on one store share it, as processes share an LMDB directory. Several
 * logs open at once see each other; a log closed and opened again sees what was written.
 */
import { describe, expect, it } from 'vitest';
import { MissingMasterKeyError, type AppendResult, type Identity, type Log, type LogEvent } from '../../src/index.ts';
import { appendOk, encrypted, newMasterKey, patchOf } from '../support/crypto-fixtures.ts';
import { entriesOf } from '../support/projection-fixtures.ts';
import { action, allEvents } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const book: Identity = ['book', 'Neuromancer'];
const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

async function keyList(log: Log) {
  const infos = [];
  for await (const info of log.keys.list()) infos.push(info);
  return infos;
}

export function sharedStore(engine: TestEngine): void {
  describe('logs sharing one store', () => {
    /** Alice's and Bob's e-mails, encrypted under their keys, and a projection caught up with them. */
    async function customersCaughtUp() {
      const masterKey = newMasterKey();
      const { log, reopen } = await engine.tempLog({ masterKey, clock });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      const customers = log.projection('customers');
      await customers.catchUp();
      return { log, reopen, masterKey, customers };
    }

    it('shows each log the appends of the other at once, as the same events', async () => {
      const { log: first, reopen } = await engine.tempLog({ clock });
      const second = await reopen({ clock });
      const [one] = await appendOk(first, [action(book, [{ op: 'add', path: '/stock', value: 1 }])]);
      expect(await second.head()).toBe(1);
      expect(await second.get(1)).toEqual(one);
      const [two] = await appendOk(second, [action(book, [{ op: 'replace', path: '/stock', value: 2 }])]);
      expect(two?.seq).toBe(2);
      expect(await first.head()).toBe(2);
      expect(await allEvents(first)).toEqual([one, two]);
      expect(await allEvents(second)).toEqual([one, two]);
      expect(await first.state(book)).toEqual({ state: { stock: 2 }, head: 2 });
      expect(await first.verify()).toEqual({ ok: true, events: 2 });
    });

    it('reports to one log the conflict with what another log appended since its base, with both sides', async () => {
      const { log: alices, reopen } = await engine.tempLog({ clock });
      const bobs = await reopen({ clock });
      await appendOk(alices, [action(book, [{ op: 'add', path: '/stock', value: 3 }])]);
      const { head } = await bobs.state(book);
      const [sale] = await appendOk(alices, [action(book, [{ op: 'replace', path: '/stock', value: 2 }])]);
      const result = await bobs.append([action(book, [{ op: 'replace', path: '/stock', value: 5 }], { actor: ['user', 'bob'] })], { base: head });
      expect(result).toMatchObject({ status: 'conflict', accepted: [], conflicts: [{ ours: { seq: 3 }, theirs: sale }] });
      expect(await bobs.conflicts(head, book)).toEqual([sale]);
      expect(await alices.head()).toBe(2);
    });

    it('lets exactly one of the appends racing through several logs on one store win, round after round, seqs gapless', async () => {
      const { log, reopen } = await engine.tempLog({ clock });
      const logs = [log, ...(await Promise.all([1, 2, 3].map(() => reopen({ clock }))))];
      await appendOk(log, [action(book, [{ op: 'add', path: '/round', value: 0 }])]);
      for (let round = 1; round <= 10; round++) {
        const base = await log.head();
        const results = await Promise.all(logs.map((racer, i) => racer.append([action(book, [{ op: 'replace', path: '/round', value: `${round}.${i}` }])], { base })));
        const winners = results.filter((r): r is Extract<AppendResult, { status: 'ok' }> => r.status === 'ok');
        expect(winners, `round ${round}`).toHaveLength(1);
        const winner = winners[0]?.events[0] as LogEvent;
        expect(winner.seq).toBe(base + 1);
        for (const result of results) {
          if (result.status === 'ok') continue;
          expect(result).toMatchObject({ status: 'conflict', conflicts: [{ theirs: winner }] });
        }
      }
      for (const racer of logs) {
        const events = await allEvents(racer);
        expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
      }
      expect(await logs[3]?.verify()).toEqual({ ok: true, events: 11 });
    });

    it('sees, in a log closed and opened again on the store, what was written: events, keys and projections', async () => {
      const { log, reopen, masterKey, customers } = await customersCaughtUp();
      await log.keys.shred(aliceKey);
      await log.keys.create(['user', 'carol'], { ttl: { days: 1 } });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }])]);
      const before = { events: await allEvents(log), keys: await keyList(log), entries: await entriesOf(customers), position: await customers.position() };
      expect(before.position).toBe(2);
      await log.close();

      const reopened = await reopen({ masterKey, clock });
      const again = reopened.projection('customers');
      expect({ events: await allEvents(reopened), keys: await keyList(reopened), entries: await entriesOf(again), position: await again.position() }).toEqual(before);
      expect(patchOf(await reopened.get(2))[0]?.value).toBe('bob@example.com');
      // The projection carries on from where it was, and meets the shred.
      expect(await again.catchUp()).toEqual({ from: 3, to: 4, actions: 1, replayed: 1 });
      expect(await again.get(alice)).toEqual({ email: null });
      expect(await reopened.verify()).toEqual({ ok: true, events: 4 });
    });

    it('redacts, in the next read of a log that has just decrypted them, the values whose key another log shredded', async () => {
      const masterKey = newMasterKey();
      const { log: reader, reopen } = await engine.tempLog({ masterKey, clock });
      await appendOk(reader, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      const emails = async () => (await allEvents(reader)).filter((event) => 'action' in event).map((event) => patchOf(event)[0]?.value);
      expect(await emails()).toEqual(['alice@example.com', 'bob@example.com']);

      const keystore = await reopen({ masterKey, clock });
      await keystore.keys.shred(aliceKey);
      expect(await emails()).toEqual([null, 'bob@example.com']);
      expect(patchOf(await reader.get(1))[0]?.value).toBeNull();
      expect(await reader.state(alice)).toEqual({ state: { email: null }, head: 3 });
      expect(await reader.state(bob)).toEqual({ state: { email: 'bob@example.com' }, head: 3 });

      await keystore.keys.shred(bobKey);
      expect(patchOf(await reader.get(2))[0]?.value).toBeNull();
    });

    it('hands a projection of one log, at its next catch-up, the shred made through another log', async () => {
      const { log, reopen, masterKey, customers } = await customersCaughtUp();
      expect(await customers.get(alice)).toEqual({ email: 'alice@example.com' });

      const keystore = await reopen();
      const shred = await keystore.keys.shred(aliceKey);
      expect(await customers.catchUp()).toEqual({ from: shred.seq, to: shred.seq, actions: 0, replayed: 1 });
      expect(await customers.get(alice)).toEqual({ email: null });
      expect(await customers.get(bob)).toEqual({ email: 'bob@example.com' });
      // Another log with the master key sees the same stored projection, caught up; without it, a
      // state sealed under a live key cannot be opened, as a value under one cannot be decrypted.
      const reader = await reopen({ masterKey, clock });
      expect(await entriesOf(reader.projection('customers'))).toEqual(await entriesOf(customers));
      await expect(keystore.projection('customers').get(bob)).rejects.toBeInstanceOf(MissingMasterKeyError);
      expect(await keystore.projection('customers').get(alice)).toEqual({ email: null });
    });
  });

  describe('stats', () => {
    it("reports the engine's kind, and what the store holds", async () => {
      const { log, reopen } = await engine.tempLog({ masterKey: newMasterKey(), clock });
      expect(await log.stats()).toEqual({ engine: engine.kind, events: 0, aggregates: 0, keys: { live: 0, destroyed: 0 }, bytes: expect.any(Number), projections: [], processManagers: [], notifiers: [] });
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com'), action(book, [{ op: 'add', path: '/stock', value: 1 }])]);
      await log.projection('customers', { kinds: ['customer'] }).catchUp();
      await log.keys.shred(aliceKey);
      const stats = await log.stats();
      expect(stats).toEqual({
        engine: engine.kind,
        events: 4,
        aggregates: 3,
        keys: { live: 1, destroyed: 1 },
        bytes: expect.any(Number),
        projections: [{ name: 'customers', position: 3, lag: 1 }],
        processManagers: [],
        notifiers: [],
      });
      expect(stats.bytes).toBeGreaterThan(0);
      // Another log on the store reports the same store.
      expect({ ...(await (await reopen()).stats()), bytes: 0 }).toEqual({ ...stats, bytes: 0 });
    });
  });
}
