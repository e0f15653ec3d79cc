/**
 * Snapshots (SPEC §12): `state()` starts from the latest snapshot and folds only what came after;
 * the state is the same with and without; a snapshot holds no plaintext of an encrypted value,
 * is removed in the transaction of an effect on its aggregate, and goes unused once the kind's
 * schema changes.
 */
import { open, type Key } from 'lmdb';
import { Packr } from 'msgpackr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryEngine, openLog, type Action, type Identity, type Operation } from '../src/index.ts';
import { lmdbEngine } from '../src/storage/lmdb/lmdb-engine.ts';
import { storageEngineOf } from '../src/storage/registry.ts';
import { filesContaining, newMasterKey } from './support/crypto-fixtures.ts';
import { action, tempDir } from './support/temp-log.ts';

const packr = new Packr({ useRecords: false });
const book: Identity = ['book', 'Neuromancer'];

/** The snapshot LMDB holds for an aggregate: [seq, sealed or plain record], or undefined. */
async function storedSnapshot(path: string, aggregate: Identity): Promise<[number, Uint8Array] | undefined> {
  const root = open({ path, maxDbs: 16 });
  try {
    const stored = root.openDB<Buffer, Key>({ name: 'snapshots', encoding: 'binary' }).get([aggregate[0], aggregate[1]]);
    return stored === undefined ? undefined : (packr.unpack(stored) as [number, Uint8Array]);
  } finally {
    await root.close();
  }
}

const op = fc.oneof(
  fc.record({ op: fc.constant('add' as const), path: fc.constantFrom('/a', '/b', '/list/-', '/n'), value: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ op: fc.constant('replace' as const), path: fc.constantFrom('/a', '/b', '/n'), value: fc.integer() }),
  fc.record({ op: fc.constant('remove' as const), path: fc.constantFrom('/a', '/b', '/list/0') }),
);

describe('snapshots', () => {
  it('give the same state as folding every action, whatever the history and however often state() is asked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 7 }), async (patches, every) => {
        const engine = memoryEngine();
        const plain = await openLog({ engine });
        const snapshotting = await openLog({ engine, snapshots: { every } });
        await plain.append([action(book, [{ op: 'add', path: '/list', value: [] }])], { base: 0 });
        for (const [i, patch] of patches.entries()) {
          await plain.append([action(book, patch as Operation[])], { base: await plain.head() });
          if (i % 3 === 0) expect(await snapshotting.state(book)).toEqual(await plain.state(book));
        }
        expect(await snapshotting.state(book)).toEqual(await plain.state(book));
        expect(await snapshotting.state(book)).toEqual(await plain.state(book));
        await Promise.all([plain.close(), snapshotting.close()]);
      }),
      { numRuns: 40 },
    );
  });

  it('is written by a state() that folded `every` actions, as of the head it read, and used by the next', async () => {
    const path = tempDir();
    const log = await openLog({ path, snapshots: { every: 10 } });
    for (let i = 0; i < 25; i++) await log.append([action(book, [{ op: 'add', path: `/n${i}`, value: i }])], { base: await log.head() });
    await log.append([action(['book', 'other'], [{ op: 'add', path: '/x', value: 1 }])], { base: 25 });
    const { state } = await log.state(book);
    await log.close();
    expect(await storedSnapshot(path, book)).toEqual([26, expect.any(Uint8Array)]);
    expect(await storedSnapshot(path, ['book', 'other'])).toBeUndefined(); // one action: under `every`
    // The snapshot holds the state itself (plain: nothing was encrypted).
    const [, record] = (await storedSnapshot(path, book)) as [number, Uint8Array];
    expect(packr.unpack(record)).toEqual({ f: '1', state });
    const reopened = await openLog({ path, snapshots: { every: 10 } });
    await reopened.append([action(book, [{ op: 'add', path: '/last', value: true }])], { base: 26 });
    expect((await reopened.state(book)).state).toEqual({ ...(state as object), last: true });
    await reopened.close();
  });

  it('keeps no plaintext of an encrypted value, is gone with the shred that affects its aggregate, and the state reads redacted', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey, snapshots: { every: 5 }, redact: () => '[erased]' });
    const alice: Identity = ['customer', 'alice'];
    const secret = 'alice-private-phone +44 20 7946 0000';
    await log.append([action(alice, [{ op: 'add', path: '/phone', value: secret }], { encrypt: { key: alice } })], { base: 0 });
    for (let i = 0; i < 6; i++) await log.append([action(alice, [{ op: 'add', path: `/visit${i}`, value: `visit number ${i} to the shop` }])], { base: await log.head() });
    expect((await log.state(alice)).state).toMatchObject({ phone: secret });
    const snapshot = await storedSnapshot(path, alice);
    expect(snapshot?.[0]).toBe(7);
    expect(filesContaining(path, secret)).toEqual([]);
    expect(filesContaining(path, 'visit number 5 to the shop').length).toBeGreaterThan(0);

    await log.keys.shred(alice);
    expect(await storedSnapshot(path, alice)).toBeUndefined();
    expect((await log.state(alice)).state).toMatchObject({ phone: '[erased]', visit5: 'visit number 5 to the shop' });
    await log.compact();
    await log.close();
    expect(filesContaining(path, Buffer.from((snapshot as [number, Uint8Array])[1]).subarray(-32))).toEqual([]);
  });

  it('goes unused once the kind\'s schema version or upcasters change', async () => {
    const path = tempDir();
    const v1 = await openLog({ path, snapshots: { every: 2 } });
    for (let i = 0; i < 4; i++) await v1.append([action(book, [{ op: 'add', path: `/title${i}`, value: i }])], { base: i });
    expect((await v1.state(book)).state).toEqual({ title0: 0, title1: 1, title2: 2, title3: 3 });
    await v1.close();
    expect(await storedSnapshot(path, book)).toBeDefined();
    const rename = (a: Action): Action => ({ ...a, patch: a.patch.map((o) => ({ ...o, path: o.path.replace('/title', '/name') })) });
    const v2 = await openLog({ path, snapshots: { every: 2 }, schemas: { book: { version: 2, upcasters: [rename] } } });
    expect((await v2.state(book)).state).toEqual({ name0: 0, name1: 1, name2: 2, name3: 3 });
    await v2.close();
    const other = (a: Action): Action => ({ ...a, patch: a.patch.map((o) => ({ ...o, path: o.path.replace('/title', '/label') })) });
    const v2b = await openLog({ path, snapshots: { every: 2 }, schemas: { book: { version: 2, upcasters: [other] } } });
    expect((await v2b.state(book)).state).toEqual({ label0: 0, label1: 1, label2: 2, label3: 3 });
    await v2b.close();
  });

  it('are refused by the engine when an effect on the aggregate came after their seq, on LMDB and in memory', async () => {
    for (const engine of [lmdbEngine(tempDir()), storageEngineOf(memoryEngine())]) {
      const storage = await engine.open();
      const linked: Identity = ['consent', 1];
      // Write through the engine directly: an action linked to a trigger, then an effect on it.
      const rows = (seq: number) => ({ seq, record: Uint8Array.of(1, seq) });
      await storage.write({ base: 0, aggregates: [], conflictRecords: false, triggers: [], keys: [] }, () => ({ result: 0, events: [{ type: 'action', aggregate: book, triggers: [linked], ...rows(1) }] }));
      expect(await storage.putSnapshot(book, 1, Uint8Array.of(7))).toBe(true);
      expect((await storage.snapshot(book, 1))?.seq).toBe(1);
      await storage.write({ base: 0, aggregates: [], conflictRecords: false, triggers: [], keys: [] }, () => ({ result: 0, events: [{ type: 'effect', trigger: linked, affected: [book], ...rows(2) }] }));
      expect(await storage.snapshot(book, 10)).toBeUndefined(); // removed with the effect
      expect(await storage.putSnapshot(book, 1, Uint8Array.of(7))).toBe(false); // older than the effect
      expect(await storage.putSnapshot(book, 2, Uint8Array.of(8))).toBe(true);
      expect(await storage.putSnapshot(book, 2, Uint8Array.of(9))).toBe(false); // not newer
      expect(await storage.snapshot(book, 1)).toBeUndefined(); // taken after what the reader saw
      await storage.close();
    }
  });

  it('refuses a snapshots option that is not { every: positive integer }', async () => {
    for (const snapshots of [{ every: 0 }, { every: 1.5 }, { every: '10' }, { every: 10, other: 1 }, 10]) {
      await expect(openLog({ engine: memoryEngine(), snapshots: snapshots as never })).rejects.toThrow(/^options\.snapshots/);
    }
  });
});
