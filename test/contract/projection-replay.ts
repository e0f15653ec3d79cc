import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, type ActionEvent, type Identity, type Log, type NewAction } from '../../src/index.ts';
import { appendOk, entriesOf, foldByHand, newMasterKey, rejection, sorted, statesOf } from '../support/projection-fixtures.ts';
import { action, effect, type TempLog } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const ERASED = '<erased>';
const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const carol: Identity = ['customer', 'carol'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];
const order1: Identity = ['order', 1];
const order2: Identity = ['order', 2];

const ALICE_EMAIL = 'alice.ultraviolet-7c1f@example.org';
const ALICE_PHONE = '+44-20-7946-0958-alice';
const BOB_EMAIL = 'bob.marigold-93ad@example.org';

/** A log with a master key; reads of values whose key is gone yield ERASED. */
async function openShop(engine: TestEngine): Promise<TempLog> {
  return engine.tempLog({ masterKey: newMasterKey(), clock, redact: () => ERASED });
}

/** Someone signs up: a public name, and an e-mail encrypted under their key. */
function signUp(aggregate: Identity, key: Identity, name: string, email: string): NewAction {
  return action(aggregate, [
    { op: 'add', path: '/name', value: name },
    { op: 'add', path: '/email', value: email },
  ], { reason: 'sign up', encrypt: { key, paths: ['/email'] } });
}

export function projectionReplay(engine: TestEngine): void {
  describe('a projection that meets a shred', () => {
    it('forgets the plaintext on the next catch-up: get and entries show the redact value in its place', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL), signUp(bob, bobKey, 'Bob', BOB_EMAIL)]);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/phone', value: ALICE_PHONE }], { encrypt: { key: aliceKey } })]);
      const customers = log.projection('customers');
      await customers.catchUp();
      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ALICE_EMAIL, phone: ALICE_PHONE });
      expect(await entriesOf(customers)).toEqual([
        [alice, { name: 'Alice', email: ALICE_EMAIL, phone: ALICE_PHONE }],
        [bob, { name: 'Bob', email: BOB_EMAIL }],
      ]);

      const shred = await log.keys.shred(aliceKey);
      // Until it catches up, the read model is at the position it was.
      expect(await customers.position()).toBe(shred.seq - 1);
      const result = await customers.catchUp();
      expect(result).toEqual({ from: shred.seq, to: shred.seq, actions: 0, replayed: 2 });

      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED, phone: ERASED });
      expect(await customers.get(bob)).toEqual({ name: 'Bob', email: BOB_EMAIL });
      expect(await entriesOf(customers)).toEqual([
        [alice, { name: 'Alice', email: ERASED, phone: ERASED }],
        [bob, { name: 'Bob', email: BOB_EMAIL }],
      ]);
      const everything = JSON.stringify(await entriesOf(customers));
      expect(everything).not.toContain(ALICE_EMAIL);
      expect(everything).not.toContain(ALICE_PHONE);
    });

    it('never shows the shredded plaintext in a state read before the catch-up: it is refolded with the keys as they are now, for every log', async () => {
      const { log, reopen } = await openShop(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL), signUp(bob, bobKey, 'Bob', BOB_EMAIL)]);
      const customers = log.projection('customers');
      await customers.catchUp();
      await log.keys.shred(aliceKey);
      // No catch-up yet: the position is before the shred, and the stored state was folded with her e-mail.
      expect(await customers.position()).toBe(2);
      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED });
      expect(await customers.get(bob)).toEqual({ name: 'Bob', email: BOB_EMAIL });
      expect(JSON.stringify(await entriesOf(customers))).not.toContain(ALICE_EMAIL);
      // Another log on the store, without the master key, cannot open it either.
      const other = (await reopen({ clock, redact: () => ERASED })).projection('customers');
      expect(await other.get(alice)).toEqual({ name: 'Alice', email: ERASED });
      expect(await customers.position()).toBe(2);
    });

    it('folds a state read before the catch-up again only up to the position the projection is at, not the actions after it', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL)]);
      const customers = log.projection('customers');
      await customers.catchUp();
      // After the projection's position: a plain change of the same aggregate, then the shred.
      await appendOk(log, [action(alice, [{ op: 'replace', path: '/name', value: 'Alice Liddell' }])]);
      await log.keys.shred(aliceKey);
      expect(await customers.position()).toBe(1);
      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED });
      expect(await entriesOf(customers)).toEqual([[alice, { name: 'Alice', email: ERASED }]]);
      await customers.catchUp();
      expect(await customers.get(alice)).toEqual({ name: 'Alice Liddell', email: ERASED });
    });

    it('folds actions after the shred onto the redacted state', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL)]);
      const customers = log.projection('customers');
      await customers.catchUp();
      await log.keys.shred(aliceKey);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/tier', value: 'gold' }])]);
      await customers.catchUp();
      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED, tier: 'gold' });
      expect(await statesOf(customers)).toEqual(await foldByHand(log));
    });

    it('forgets the plaintext when the shred and the encrypted actions arrive in the same catch-up', async () => {
      const { log } = await openShop(engine);
      const customers = log.projection('customers');
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL), signUp(bob, bobKey, 'Bob', BOB_EMAIL)]);
      await log.keys.shred(aliceKey);
      expect(await customers.catchUp()).toEqual({ from: 1, to: 3, actions: 2, replayed: 1 });
      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED });
      expect(await customers.get(bob)).toEqual({ name: 'Bob', email: BOB_EMAIL });
    });

    it('holds the redact value, and no copy of the shredded plaintext, once the log is compacted', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL)]);
      const customers = log.projection('customers');
      await customers.catchUp();
      await log.keys.shred(aliceKey);
      await customers.catchUp();
      await log.compact();
      expect(JSON.stringify(await entriesOf(customers))).not.toContain(ALICE_EMAIL);
      expect(await customers.get(alice)).toEqual({ name: 'Alice', email: ERASED });
    });

    it('re-folds an aggregate a raw effect affects, decrypting with the keys as they are now', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [
        action(alice, [{ op: 'add', path: '/consent', value: 'marketing' }], { triggers: [['consent', 'alice-marketing']] }),
        signUp(alice, aliceKey, 'Alice', ALICE_EMAIL),
        action(bob, [{ op: 'add', path: '/name', value: 'Bob' }]),
      ]);
      const customers = log.projection('customers');
      await customers.catchUp();
      const [withdrawn] = await appendOk(log, [effect(['consent', 'alice-marketing'], 'consent withdrawn')]);
      expect(await customers.catchUp()).toEqual({ from: withdrawn?.seq, to: withdrawn?.seq, actions: 0, replayed: 2 });
      // The key lives: the re-fold decrypts, and gives the same state.
      expect(await customers.get(alice)).toEqual({ consent: 'marketing', name: 'Alice', email: ALICE_EMAIL });
      expect(await customers.get(bob)).toEqual({ name: 'Bob' });
    });
  });

  describe('a projection started at `from`', () => {
    it('ignores the actions before `from`, but re-folds from all its actions an aggregate that a later effect affects, redacted', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [
        signUp(alice, aliceKey, 'Alice', ALICE_EMAIL), // 1
        action(alice, [{ op: 'add', path: '/city', value: 'Leeds' }]), // 2
        signUp(bob, bobKey, 'Bob', BOB_EMAIL), // 3
        action(carol, [{ op: 'add', path: '/name', value: 'Carol' }]), // 4
      ]);
      const recent = log.projection('recent', { from: 5 });
      expect(await recent.position()).toBe(4);
      await appendOk(log, [action(carol, [{ op: 'add', path: '/city', value: 'York' }])]); // 5
      expect(await recent.catchUp()).toEqual({ from: 5, to: 5, actions: 1, replayed: 0 });
      expect(await entriesOf(recent)).toEqual([[carol, { city: 'York' }]]);

      const shred = await log.keys.shred(aliceKey); // 6
      expect(await recent.catchUp()).toEqual({ from: 6, to: 6, actions: 0, replayed: 2 });
      expect(await recent.get(alice)).toEqual({ name: 'Alice', email: ERASED, city: 'Leeds' });
      // Bob is not affected, so what came before `from` stays out.
      expect(await recent.get(bob)).toBeUndefined();
      expect(await entriesOf(recent)).toEqual([
        [alice, { name: 'Alice', email: ERASED, city: 'Leeds' }],
        [carol, { city: 'York' }],
      ]);
      expect(await recent.position()).toBe(shred.seq);
    });

    it('replays only the affected aggregates that match its filter', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [
        signUp(alice, aliceKey, 'Alice', ALICE_EMAIL),
        action(order1, [{ op: 'add', path: '/email', value: ALICE_EMAIL }], { encrypt: { key: aliceKey } }),
        action(order2, [{ op: 'add', path: '/total', value: 10 }]),
      ]);
      const orders = log.projection('orders', { from: 4, kinds: ['order'] });
      await log.keys.shred(aliceKey);
      expect(await orders.catchUp()).toEqual({ from: 4, to: 4, actions: 0, replayed: 1 });
      expect(await entriesOf(orders)).toEqual([[order1, { email: ERASED }]]);
    });

    it('replays nothing for an effect before `from`', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', ALICE_EMAIL)]);
      await log.keys.shred(aliceKey); // 2
      await appendOk(log, [action(bob, [{ op: 'add', path: '/name', value: 'Bob' }])]); // 3
      const late = log.projection('late', { from: 3 });
      expect(await late.catchUp()).toEqual({ from: 3, to: 3, actions: 1, replayed: 0 });
      expect(await entriesOf(late)).toEqual([[bob, { name: 'Bob' }]]);
    });

    it('starts past the head when `from` is ahead of the log, and takes the events once they come', async () => {
      const { log } = await engine.tempLog({ clock });
      const ahead = log.projection('ahead', { from: 3 });
      expect(await ahead.catchUp()).toEqual({ from: 3, to: 2, actions: 0, replayed: 0 });
      await appendOk(log, [1, 2, 3, 4].map((n) => action(order1, [{ op: 'add', path: `/n${n}`, value: n }])));
      expect(await ahead.catchUp()).toEqual({ from: 3, to: 4, actions: 2, replayed: 0 });
      expect(await ahead.get(order1)).toEqual({ n3: 3, n4: 4 });
    });
  });

  describe('a projection with filters', () => {
    /** Customers and orders; alice's key protects both her record and her order's address. */
    async function mixed(): Promise<Log> {
      const { log } = await openShop(engine);
      await appendOk(log, [
        signUp(alice, aliceKey, 'Alice', ALICE_EMAIL),
        signUp(bob, bobKey, 'Bob', BOB_EMAIL),
        action(order1, [{ op: 'add', path: '/address', value: 'alice-street-1' }], { encrypt: { key: aliceKey } }),
        action(order2, [{ op: 'add', path: '/total', value: 10 }], { triggers: [['voucher', 'v1']] }),
      ]);
      return log;
    }

    it('by kind holds only aggregates of those kinds, and replays only those an effect affects', async () => {
      const log = await mixed();
      const orders = log.projection('orders', { kinds: ['order'] });
      expect(await orders.catchUp()).toEqual({ from: 1, to: 4, actions: 2, replayed: 0 });
      expect(await entriesOf(orders)).toEqual([
        [order1, { address: 'alice-street-1' }],
        [order2, { total: 10 }],
      ]);
      // Alice's shred affects her customer record and order 1: only order 1 is replayed here.
      await log.keys.shred(aliceKey);
      // Bob's shred affects only a customer: it leaves nothing here.
      await log.keys.shred(bobKey);
      await appendOk(log, [action(bob, [{ op: 'add', path: '/city', value: 'Hull' }])]);
      expect(await orders.catchUp()).toEqual({ from: 5, to: 7, actions: 0, replayed: 1 });
      expect(await entriesOf(orders)).toEqual([
        [order1, { address: ERASED }],
        [order2, { total: 10 }],
      ]);
      expect(await orders.get(alice)).toBeUndefined();
      expect(await orders.get(bob)).toBeUndefined();
    });

    it('by aggregate holds only those aggregates, whatever else the log holds and whatever the effects affect', async () => {
      const log = await mixed();
      const some = log.projection('some', { aggregates: [alice, order2] });
      expect(await some.catchUp()).toEqual({ from: 1, to: 4, actions: 2, replayed: 0 });
      expect(await entriesOf(some)).toEqual([
        [alice, { name: 'Alice', email: ALICE_EMAIL }],
        [order2, { total: 10 }],
      ]);
      await appendOk(log, [effect(['voucher', 'v1'], 'voucher revoked')]); // 5: affects order 2
      await log.keys.shred(bobKey); // 6: affects bob only
      await log.keys.shred(aliceKey); // 7: affects alice and order 1
      expect(await some.catchUp()).toEqual({ from: 5, to: 7, actions: 0, replayed: 2 });
      expect(await entriesOf(some)).toEqual([
        [alice, { name: 'Alice', email: ERASED }],
        [order2, { total: 10 }],
      ]);
      expect(await some.get(bob)).toBeUndefined();
      expect(await some.get(order1)).toBeUndefined();
    });

    it('by kind and aggregate together holds only the aggregates that pass both', async () => {
      const log = await mixed();
      const both = log.projection('both', { kinds: ['customer'], aggregates: [alice, order1] });
      await log.keys.shred(aliceKey);
      expect(await both.catchUp()).toEqual({ from: 1, to: 5, actions: 1, replayed: 1 });
      expect(await entriesOf(both)).toEqual([[alice, { name: 'Alice', email: ERASED }]]);
    });

    it('moves its position over the events it does not hold', async () => {
      const log = await mixed();
      const nothing = log.projection('nothing', { kinds: ['invoice'] });
      expect(await nothing.catchUp()).toEqual({ from: 1, to: 4, actions: 0, replayed: 0 });
      await log.keys.shred(aliceKey);
      expect(await nothing.catchUp()).toEqual({ from: 5, to: 5, actions: 0, replayed: 0 });
      expect(await entriesOf(nothing)).toEqual([]);
      expect(await nothing.position()).toBe(5);
    });

    it('lists only one kind with entries({ kind })', async () => {
      const log = await mixed();
      const all = log.projection('all');
      await all.catchUp();
      expect((await entriesOf(all, { kind: 'order' })).map(([aggregate]) => aggregate)).toEqual([order1, order2]);
      expect((await entriesOf(all, { kind: 'customer' })).map(([aggregate]) => aggregate)).toEqual([alice, bob]);
      expect(await entriesOf(all, { kind: 'cust' })).toEqual([]);
      expect(await entriesOf(all, { kind: 'invoice' })).toEqual([]);
    });
  });

  interface Tally {
    actions: number;
    total: number;
    seqs: number[];
  }

  describe('a projection with a custom init and apply', () => {
    it('starts each aggregate from init and folds each action with apply', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(order1, [{ op: 'add', path: '/lines/-', value: { amount: 5 } }]),
        action(order2, [{ op: 'add', path: '/lines/-', value: { amount: 7 } }]),
        action(order1, [{ op: 'add', path: '/lines/-', value: { amount: 11 } }, { op: 'add', path: '/lines/-', value: { amount: 2 } }]),
        action(alice, [{ op: 'add', path: '/name', value: 'Alice' }]),
      ]);
      const inits: Identity[] = [];
      const totals = log.projection<Tally>('totals', {
        kinds: ['order'],
        init: (aggregate) => {
          inits.push(aggregate);
          return { actions: 0, total: 0, seqs: [] };
        },
        apply: (state, event) => {
          for (const op of event.action.patch) if (op.op === 'add') state.total += (op.value as { amount: number }).amount;
          return { ...state, actions: state.actions + 1, seqs: [...state.seqs, event.seq] };
        },
      });
      expect(await totals.catchUp()).toEqual({ from: 1, to: 4, actions: 3, replayed: 0 });
      expect(inits).toEqual([order1, order2]);
      expect(await entriesOf(totals)).toEqual([
        [order1, { actions: 2, total: 18, seqs: [1, 3] }],
        [order2, { actions: 1, total: 7, seqs: [2] }],
      ]);
    });

    it('on an effect, starts the affected aggregate again from init and applies its actions up to the effect, once each, in order', async () => {
      const { log } = await openShop(engine);
      await appendOk(log, [
        action(order1, [{ op: 'add', path: '/amount', value: 5 }], { encrypt: { key: aliceKey } }), // 1
        action(order2, [{ op: 'add', path: '/amount', value: 7 }]), // 2
        action(order1, [{ op: 'add', path: '/amount', value: 11 }]), // 3
      ]);
      const inits: Identity[] = [];
      const seen: [number, unknown][] = [];
      const totals = log.projection<Tally>('totals', {
        init: (aggregate) => {
          inits.push(aggregate);
          return { actions: 0, total: 0, seqs: [] };
        },
        apply: (state, event: ActionEvent) => {
          const value = (event.action.patch[0] as { value: unknown }).value;
          seen.push([event.seq, value]);
          state.actions++;
          if (typeof value === 'number') state.total += value;
          state.seqs.push(event.seq);
          return state;
        },
      });
      await totals.catchUp();
      expect(await totals.get(order1)).toEqual({ actions: 2, total: 16, seqs: [1, 3] });
      inits.length = 0;
      seen.length = 0;

      await log.keys.shred(aliceKey); // 4: affects order 1
      await appendOk(log, [action(order1, [{ op: 'add', path: '/amount', value: 100 }])]); // 5
      expect(await totals.catchUp()).toEqual({ from: 4, to: 5, actions: 1, replayed: 2 });
      expect(inits).toEqual([order1]);
      // The replayed action 1 comes redacted; 3 as it was; 5 after the effect, once.
      expect(seen).toEqual([[1, ERASED], [3, 11], [5, 100]]);
      expect(await totals.get(order1)).toEqual({ actions: 3, total: 111, seqs: [1, 3, 5] });
      expect(await totals.get(order2)).toEqual({ actions: 1, total: 7, seqs: [2] });
    });

    it('keeps a state that is not an object', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order1, [{ op: 'add', path: '/a', value: 1 }]), action(order1, [{ op: 'add', path: '/b', value: 2 }])]);
      const counts = log.projection<number>('counts', { init: () => 0, apply: (count) => count + 1 });
      await counts.catchUp();
      expect(await counts.get(order1)).toBe(2);
      expect(await entriesOf(counts)).toEqual([[order1, 2]]);
    });
  });

  describe('several projections on one log', () => {
    async function threeProjections() {
      const { log } = await openShop(engine);
      await appendOk(log, [
        signUp(alice, aliceKey, 'Alice', ALICE_EMAIL),
        action(order1, [{ op: 'add', path: '/total', value: 3 }]),
        action(order2, [{ op: 'add', path: '/total', value: 4 }]),
      ]);
      // Names that are prefixes of one another, so they sit next to each other in the store.
      const all = log.projection('orders');
      const orders = log.projection('orders-by-kind', { kinds: ['order'] });
      const counts = log.projection<number>('orders2', { init: () => 0, apply: (n) => n + 1 });
      return { log, all, orders, counts };
    }

    it('keeps a name, states and a position for each', async () => {
      const { log, all, orders, counts } = await threeProjections();
      await all.catchUp();
      expect(await all.position()).toBe(3);
      expect(await orders.position()).toBe(0);
      expect(await entriesOf(orders)).toEqual([]);
      await orders.catchUp();
      await appendOk(log, [action(order1, [{ op: 'replace', path: '/total', value: 30 }])]);
      await counts.catchUp();
      expect([await all.position(), await orders.position(), await counts.position()]).toEqual([3, 3, 4]);
      expect(await entriesOf(all)).toEqual([[alice, { name: 'Alice', email: ALICE_EMAIL }], [order1, { total: 3 }], [order2, { total: 4 }]]);
      expect(await entriesOf(orders)).toEqual([[order1, { total: 3 }], [order2, { total: 4 }]]);
      expect(await entriesOf(counts)).toEqual([[alice, 1], [order1, 2], [order2, 1]]);
      expect([all.name, orders.name, counts.name]).toEqual(['orders', 'orders-by-kind', 'orders2']);
    });

    it('sees the same stored projection through two objects of the same name and definition', async () => {
      const { log, all } = await threeProjections();
      await all.catchUp();
      const again = log.projection('orders');
      expect(await again.position()).toBe(3);
      expect(await entriesOf(again)).toEqual(await entriesOf(all));
      expect(await again.catchUp()).toEqual({ from: 4, to: 3, actions: 0, replayed: 0 });
    });

    it('rebuilds one and leaves the others as they were', async () => {
      const { log, all, orders, counts } = await threeProjections();
      for (const projection of [all, orders, counts]) await projection.catchUp();
      await log.keys.shred(aliceKey);
      await appendOk(log, [action(order2, [{ op: 'replace', path: '/total', value: 40 }])]);
      await orders.catchUp();
      const before = { all: await entriesOf(all), orders: await entriesOf(orders), counts: await entriesOf(counts) };
      const positions = [await all.position(), await orders.position(), await counts.position()];
      expect(positions).toEqual([3, 5, 3]);

      expect(await all.rebuild()).toEqual({ from: 1, to: 5, actions: 4, replayed: 1 });
      expect(await entriesOf(all)).toEqual([[alice, { name: 'Alice', email: ERASED }], [order1, { total: 3 }], [order2, { total: 40 }]]);
      expect(await entriesOf(orders)).toEqual(before.orders);
      expect(await entriesOf(counts)).toEqual(before.counts);
      expect([await orders.position(), await counts.position()]).toEqual([5, 3]);

      expect(await counts.rebuild()).toEqual({ from: 1, to: 5, actions: 4, replayed: 1 });
      expect(await entriesOf(counts)).toEqual([[alice, 1], [order1, 1], [order2, 2]]);
      expect(await entriesOf(orders)).toEqual(before.orders);
      expect(await all.position()).toBe(5);
    });

    it('rebuilds to the same states as the incremental catch-ups gave', async () => {
      const { log, all } = await threeProjections();
      await all.catchUp();
      await log.keys.shred(aliceKey);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/city', value: 'Leeds' }])]);
      await all.catchUp();
      const incremental = await entriesOf(all);
      await all.rebuild();
      expect(await entriesOf(all)).toEqual(incremental);
      expect(sorted(await statesOf(all))).toEqual(sorted(await foldByHand(log)));
    });
  });

  describe('a changed definition', () => {
    it('refuses a projection stored under the same name with other kinds until it is rebuilt', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order1, [{ op: 'add', path: '/total', value: 3 }]), action(alice, [{ op: 'add', path: '/name', value: 'Alice' }])]);
      const v1 = log.projection('report', { kinds: ['order'] });
      await v1.catchUp();

      const v2 = log.projection('report', { kinds: ['order', 'customer'] });
      const error = await rejection(v2.catchUp());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toContain('"report"');
      expect((error as Error).message).toContain('rebuild()');
      await expect(v2.position()).rejects.toThrow(InvalidArgumentError);
      // Nothing changed in the stored projection.
      expect(await v1.position()).toBe(2);
      expect(await entriesOf(v1)).toEqual([[order1, { total: 3 }]]);

      expect(await v2.rebuild()).toEqual({ from: 1, to: 2, actions: 2, replayed: 0 });
      expect(await entriesOf(v2)).toEqual([[alice, { name: 'Alice' }], [order1, { total: 3 }]]);
      // Now the old definition is the one refused.
      await expect(v1.catchUp()).rejects.toThrow(InvalidArgumentError);
    });

    it('refuses other aggregates or another `from` too', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order1, [{ op: 'add', path: '/total', value: 3 }])]);
      await log.projection('report', { aggregates: [order1] }).catchUp();
      await expect(log.projection('report', { aggregates: [order2] }).catchUp()).rejects.toThrow(InvalidArgumentError);
      await expect(log.projection('report').catchUp()).rejects.toThrow(InvalidArgumentError);
      await expect(log.projection('report', { aggregates: [order1], from: 2 }).catchUp()).rejects.toThrow(InvalidArgumentError);
    });

    it('takes the same kinds or aggregates in another order as the same definition', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order1, [{ op: 'add', path: '/total', value: 3 }])]);
      await log.projection('report', { kinds: ['order', 'customer'], aggregates: [order1, alice] }).catchUp();
      const same = log.projection('report', { kinds: ['customer', 'order'], aggregates: [alice, order1] });
      expect(await same.catchUp()).toEqual({ from: 2, to: 1, actions: 0, replayed: 0 });
    });

    it('accepts another init or apply under the same name, keeping the states already stored', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order1, [{ op: 'add', path: '/total', value: 3 }])]);
      await log.projection<number>('counts', { init: () => 0, apply: (n) => n + 1 }).catchUp();
      await appendOk(log, [action(order1, [{ op: 'add', path: '/more', value: 1 }])]);
      const tens = log.projection<number>('counts', { init: () => 0, apply: (n) => n + 10 });
      expect(await tens.catchUp()).toEqual({ from: 2, to: 2, actions: 1, replayed: 0 });
      expect(await tens.get(order1)).toBe(11);
    });
  });
}
