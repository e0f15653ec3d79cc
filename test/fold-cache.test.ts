/**
 * An open log keeps the folds of aggregates that hold no plaintext under a key and brings them up
 * to date from the actions after them (src/log/fold-cache.ts). What every reader relies on: a
 * state read through a log that kept earlier folds is exactly what a log folding from scratch
 * reads, whoever appended since (this log, another on the store, another process), whatever the
 * caller did to a state it got, and a state with decrypted values in it is never kept (its key
 * may expire or be shredded without any new action on the aggregate).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryEngine, openLog, type Identity, type Log, type Operation } from '../src/index.ts';
import { copyOf, FoldCache } from '../src/log/fold-cache.ts';
import { appendOk, DAY_MS, encrypted, manualClock, newMasterKey, spawnChild } from './support/crypto-fixtures.ts';
import { storageEngineOf } from '../src/storage/registry.ts';
import { action, afterTest, tempLog } from './support/temp-log.ts';

async function stateOf(log: Log, aggregate: Identity): Promise<unknown> {
  return (await log.state(aggregate)).state;
}

describe('states read through a log that keeps folds', () => {
  it('are what a fresh log folds, read after read, while this log, another log on the store and another process append', async () => {
    const { log, path, reopen } = await tempLog();
    const other = await reopen();
    const order: Identity = ['order', 7];
    await appendOk(log, [action(order, [{ op: 'add', path: '/total', value: 1 }, { op: 'add', path: '/lines', value: [] }])]);
    expect(await stateOf(log, order)).toEqual({ total: 1, lines: [] });
    await appendOk(log, [action(order, [{ op: 'add', path: '/lines/-', value: 'tea' }])]);
    expect(await stateOf(log, order)).toEqual({ total: 1, lines: ['tea'] });
    await appendOk(other, [action(order, [{ op: 'replace', path: '/total', value: 2 }, { op: 'add', path: '/lines/-', value: 'milk' }])]);
    expect(await stateOf(log, order)).toEqual({ total: 2, lines: ['tea', 'milk'] });
    // A patch that does not apply leaves the state as it was, held or not.
    await appendOk(other, [action(order, [{ op: 'remove', path: '/missing' }])]);
    expect(await stateOf(log, order)).toEqual({ total: 2, lines: ['tea', 'milk'] });

    const child = spawnChild('projection-append.ts', [path]);
    await child.line('ready');
    child.process.stdin.write('append 7 30\n');
    await child.line('appended ');
    child.process.stdin.write('exit\n');
    expect(await child.exited).toBe(0);
    expect(await stateOf(log, order)).toEqual({ total: 30, lines: ['tea', 'milk'] });
    const fresh = await reopen();
    expect(await fresh.state(order)).toEqual(await log.state(order));
  });

  it('stay the same whatever the caller does to a state it got', async () => {
    const { log } = await tempLog();
    const cart: Identity = ['cart', 'c1'];
    await appendOk(log, [action(cart, [{ op: 'add', path: '/items', value: [{ sku: 'a', qty: 1 }] }, { op: 'add', path: '/owner', value: { name: 'Ada' } }])]);
    const first = (await stateOf(log, cart)) as { items: { sku: string; qty: number }[]; owner: { name: string }; extra?: number };
    first.items.push({ sku: 'z', qty: 9 });
    (first.items[0] as { qty: number }).qty = 100;
    first.owner.name = 'Mallory';
    first.extra = 1;
    expect(await stateOf(log, cart)).toEqual({ items: [{ sku: 'a', qty: 1 }], owner: { name: 'Ada' } });
    await appendOk(log, [action(cart, [{ op: 'add', path: '/items/-', value: { sku: 'b', qty: 2 } }])]);
    const second = (await stateOf(log, cart)) as { items: unknown[] };
    second.items.length = 0;
    expect(await stateOf(log, cart)).toEqual({ items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }], owner: { name: 'Ada' } });
  });

  it('with a value decrypted under a key are not kept: once the key expires, with no new action on the aggregate, the next read redacts it', async () => {
    const clock = manualClock();
    const { log } = await tempLog({ masterKey: newMasterKey(), clock: clock.read, autoExpire: false });
    const alice: Identity = ['customer', 'alice'];
    const key: Identity = ['subject', 'alice'];
    await log.keys.create(key, { expiresAt: new Date(clock.now.getTime() + DAY_MS) });
    await appendOk(log, [action(alice, [{ op: 'add', path: '/tier', value: 'gold' }])]);
    expect(await stateOf(log, alice)).toEqual({ tier: 'gold' }); // held: nothing under a key yet
    await appendOk(log, [encrypted(alice, key, 'alice@example.org')]);
    expect(await stateOf(log, alice)).toEqual({ tier: 'gold', email: 'alice@example.org' });
    expect(await stateOf(log, alice)).toEqual({ tier: 'gold', email: 'alice@example.org' });
    clock.advance(2 * DAY_MS);
    expect(await stateOf(log, alice)).toEqual({ tier: 'gold', email: null }); // the default redact value
  });

  it('still take a snapshot once `every` actions are past the latest, however many reads folded them', async () => {
    const engine = memoryEngine();
    const log = await openLog({ engine, snapshots: { every: 5 } });
    const storage = await storageEngineOf(engine).open();
    afterTest(async () => {
      await log.close();
      await storage.close();
    });
    const book: Identity = ['book', 'b1'];
    const snapshotted = async () => (await storage.snapshot(book, Number.MAX_SAFE_INTEGER))?.seq;
    for (let i = 0; i < 12; i++) {
      await appendOk(log, [action(book, [{ op: 'add', path: `/n${i}`, value: i }])]);
      await log.state(book); // each read folds one action more than the fold this log holds
      expect(await snapshotted()).toBe(i < 4 ? undefined : i < 9 ? 5 : 10);
    }
  });

  it('are what a fresh log folds for any sequence of appends and reads, on any of a few aggregates', async () => {
    const aggregates: Identity[] = [['a', 1], ['a', 2], ['b', 'x']];
    const operation: fc.Arbitrary<Operation> = fc.oneof(
      fc.record({ op: fc.constantFrom('add' as const, 'replace' as const), path: fc.constantFrom('/n', '/list', '/o', '/o/k'), value: fc.oneof(fc.integer(), fc.constant([]), fc.constant({})) }),
      fc.record({ op: fc.constant('add' as const), path: fc.constantFrom('/list/-', '/list/0'), value: fc.integer() }),
      fc.record({ op: fc.constant('remove' as const), path: fc.constantFrom('/n', '/list/0', '/o/k') }),
    );
    const step = fc.oneof(
      fc.record({ append: fc.nat(2), patch: fc.array(operation, { minLength: 1, maxLength: 3 }), other: fc.boolean() }),
      fc.record({ read: fc.nat(2), mutate: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const engine = memoryEngine();
        const kept = await openLog({ engine });
        const other = await openLog({ engine });
        afterTest(async () => {
          await kept.close();
          await other.close();
        });
        for (const s of steps) {
          if ('append' in s) {
            const writer = s.other ? other : kept;
            const result = await writer.append([action(aggregates[s.append] as Identity, s.patch)], { base: await writer.head() });
            expect(result.status).toBe('ok');
            continue;
          }
          const aggregate = aggregates[s.read] as Identity;
          const got = await kept.state(aggregate);
          const fresh = await openLog({ engine });
          const expected = await fresh.state(aggregate);
          await fresh.close();
          expect(got).toEqual(expected);
          if (s.mutate && typeof got.state === 'object' && got.state !== null) (got.state as Record<string, unknown>).n = 'changed by the caller';
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('FoldCache', () => {
  it('gives the fold held at or before a head, keeps the latest fold of an aggregate, and starts again empty past its limit', () => {
    const cache = new FoldCache(2);
    cache.hold(['a', 1], { at: 5, state: { v: 5 }, exists: true, pastSnapshot: 5 });
    expect(cache.before(['a', 1], 4)).toBeUndefined();
    expect(cache.before(['a', 1], 5)).toEqual({ at: 5, state: { v: 5 }, exists: true, pastSnapshot: 5 });
    cache.hold(['a', 1], { at: 3, state: { v: 3 }, exists: true, pastSnapshot: 3 });
    expect(cache.before(['a', 1], 9)?.at).toBe(5);
    cache.hold(['a', '1'], { at: 6, state: { v: 6 }, exists: true, pastSnapshot: 1 });
    expect(cache.before(['a', 1], 9)?.state).toEqual({ v: 5 }); // 1 and '1' are two aggregates
    cache.hold(['b', 1], { at: 7, state: {}, exists: false, pastSnapshot: 0 });
    expect(cache.before(['a', 1], 9)).toBeUndefined();
    expect(cache.before(['b', 1], 9)).toEqual({ at: 7, state: {}, exists: false, pastSnapshot: 0 });
    cache.drop(['b', 1]);
    expect(cache.before(['b', 1], 9)).toBeUndefined();
  });

  it('holds a copy of the state given, sharing no object or array with it', () => {
    const cache = new FoldCache();
    const state = { list: [{ n: 1 }], nested: { deep: [1, 2] } };
    cache.hold(['a', 1], { at: 1, state, exists: true, pastSnapshot: 1 });
    state.list.push({ n: 2 });
    state.nested.deep[0] = 9;
    expect(cache.before(['a', 1], 1)?.state).toEqual({ list: [{ n: 1 }], nested: { deep: [1, 2] } });
  });

  it('copies plain objects and arrays all the way down, keeps an own "__proto__" a member, and shares other values', () => {
    const when = new Date(0);
    const odd = JSON.parse('{"__proto__": {"polluted": true}, "a": [1, {"b": 2}]}') as Record<string, unknown>;
    const copy = copyOf({ odd, when });
    expect(copy.odd).not.toBe(odd);
    expect(Object.getPrototypeOf(copy.odd)).toBe(Object.prototype);
    expect(Object.hasOwn(copy.odd, '__proto__')).toBe(true);
    expect(JSON.stringify(copy.odd)).toBe(JSON.stringify(odd));
    expect(copy.odd.a).not.toBe(odd.a);
    expect(copy.when).toBe(when);
  });
});
