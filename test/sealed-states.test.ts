/**
 * Read models that never hold plaintext at rest (SPEC §6, "Read models at rest are sealed"), on
 * the LMDB files: byte scans, a shred from another process, a crash between a shred and the
 * catch-up, and the sealed record itself, opened by hand.
 */
import { open, type Key } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { openSealed } from '../src/crypto/seal.ts';
import { packr } from '../src/model/msgpack.ts';
import { openLog, type ActionEvent, type Identity } from '../src/index.ts';
import { appendOk, filesContaining, identityArg, newMasterKey, runChild, scanFiles, spawnChild } from './support/crypto-fixtures.ts';
import { action, tempDir, tempLog } from './support/temp-log.ts';

const ERASED = '[erased]';
const redact = () => ERASED;

/** A sealed state as stored: msgpack [marker (a binary), keys, salt, ciphertext]. */
async function storedState(path: string, projection: string, aggregate: Identity): Promise<[Uint8Array, Identity[], Uint8Array | null, Uint8Array | null]> {
  const root = open({ path, maxDbs: 16 });
  try {
    const stored = root.openDB<Buffer, Key>({ name: 'projections', encoding: 'binary' }).get([projection, 1, aggregate[0], aggregate[1]]);
    if (stored === undefined) throw new Error(`no state of ${JSON.stringify(aggregate)}`);
    const record = packr.unpack(stored) as unknown;
    if (!Array.isArray(record) || !(record[0] instanceof Uint8Array)) throw new Error('the state is not sealed');
    return record as [Uint8Array, Identity[], Uint8Array | null, Uint8Array | null];
  } finally {
    await root.close();
  }
}

interface RawKey { key: Identity; raw: string }

describe('projection states at rest', () => {
  it('keeps no plaintext of an encrypted value in any file after a catch-up, while a plain value of the same action is found (the scan is real)', async () => {
    const masterKey = newMasterKey();
    const { log, path } = await tempLog({ masterKey });
    const secret = 'card 4111-1111-1111-1111 of alice';
    const marker = 'the shop on the corner of High Street';
    await appendOk(log, [
      action(['receipt', 1], [{ op: 'add', path: '/card', value: secret }, { op: 'add', path: '/shop', value: marker }], { encrypt: { key: ['customer', 'alice'], paths: ['/card'] } }),
    ]);
    const receipts = log.projection('receipts');
    await receipts.catchUp();
    expect(await receipts.get(['receipt', 1])).toEqual({ card: secret, shop: marker });
    const scan = scanFiles(path);
    expect(scan(secret)).toEqual([]);
    // The scan is real: the plain value of the same action, in the same projection, is found.
    expect(scan(marker).length).toBeGreaterThan(0);
  });

  it('keeps no plaintext when a custom apply copies the encrypted value into other fields', async () => {
    const masterKey = newMasterKey();
    const { log, path } = await tempLog({ masterKey });
    const secret = 'alice@private.example.org';
    const marker = 'plain marker of the copying projection';
    await appendOk(log, [
      action(['customer', 'alice'], [{ op: 'add', path: '/email', value: secret }], { encrypt: { key: ['customer', 'alice'] } }),
      action(['customer', 'alice'], [{ op: 'add', path: '/note', value: marker }]),
      action(['customer', 'bob'], [{ op: 'add', path: '/note', value: marker }]),
    ]);
    // Upper-cased copies exist only in the projection's states, never in the log.
    const copying = (aggregates: Identity[]) => log.projection<{ upper: string[] }>(`copies-${aggregates[0]?.[1]}`, {
      aggregates,
      init: () => ({ upper: [] }),
      apply: (state, event: ActionEvent) => {
        const value = (event.action.patch[0] as { value: unknown }).value;
        return { upper: typeof value === 'string' ? [...state.upper, value.toUpperCase()] : state.upper };
      },
    });
    const sealed = copying([['customer', 'alice']]);
    const plain = copying([['customer', 'bob']]);
    await sealed.catchUp();
    expect(await sealed.get(['customer', 'alice'])).toEqual({ upper: [secret.toUpperCase(), marker.toUpperCase()] });
    expect(scanFiles(path)(marker.toUpperCase())).toEqual([]); // sealed with the secret: the whole state is
    expect(scanFiles(path)(secret.toUpperCase())).toEqual([]);
    expect(scanFiles(path)(secret)).toEqual([]);
    // Folded from plaintext only, the same kind of state is stored as it is: the scan finds it.
    await plain.catchUp();
    expect(await plain.get(['customer', 'bob'])).toEqual({ upper: [marker.toUpperCase()] });
    expect(scanFiles(path)(marker.toUpperCase()).length).toBeGreaterThan(0);
  });

  it('after a shred in another process, get here reads the state redacted before any catch-up, and the record does not open with the remaining keys', async () => {
    const masterKey = newMasterKey();
    const { log, path } = await tempLog({ masterKey, redact });
    const alice: Identity = ['customer', 'alice'];
    const shop: Identity = ['shop', 'corner'];
    const order: Identity = ['order', 7];
    await appendOk(log, [
      action(order, [{ op: 'add', path: '/buyer', value: 'Alice Liddell' }], { encrypt: { key: alice } }),
      action(order, [{ op: 'add', path: '/till', value: 'till 3 of the corner shop' }], { encrypt: { key: shop } }),
    ]);
    const orders = log.projection('orders');
    await orders.catchUp();
    expect(await orders.get(order)).toEqual({ buyer: 'Alice Liddell', till: 'till 3 of the corner shop' });
    const [marker, keys, salt, ciphertext] = await storedState(path, 'orders', order);
    expect([...marker]).toEqual([1]);
    expect(keys).toEqual([alice, shop].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)));
    const raw = await runChild<RawKey[]>('crypto-key-record.ts', [path, masterKey, JSON.stringify(keys)]);
    const material = (key: Identity) => Buffer.from((raw.find((r) => JSON.stringify(r.key) === JSON.stringify(key)) as RawKey).raw, 'hex');
    const ad = new TextEncoder().encode(`coherence/sealed/v1\u0000${JSON.stringify(['orders', order, keys])}`);
    // With every key it opens (so the check below is a real one)...
    expect(openSealed(ciphertext as Uint8Array, keys.map(material), salt as Uint8Array, ad, 'test')).toEqual({ buyer: 'Alice Liddell', till: 'till 3 of the corner shop' });

    await runChild('crypto-shred.ts', [path, identityArg(alice)]);
    expect(await orders.position()).toBe(2); // no catch-up has run
    expect(await orders.get(order)).toEqual({ buyer: ERASED, till: 'till 3 of the corner shop' });
    const entries = [];
    for await (const entry of orders.entries()) entries.push(entry);
    expect(entries).toEqual([[order, { buyer: ERASED, till: 'till 3 of the corner shop' }]]);
    // ...and without alice's key, the shop's key alone (or with anything in alice's place) does not.
    expect(() => openSealed(ciphertext as Uint8Array, [material(shop)], salt as Uint8Array, ad, 'test')).toThrow(/fails authentication/);
    expect(() => openSealed(ciphertext as Uint8Array, keys.map((k) => (JSON.stringify(k) === JSON.stringify(alice) ? Buffer.alloc(32) : material(k))), salt as Uint8Array, ad, 'test')).toThrow(/fails authentication/);
  });

  it('of 200 subjects with one shredded, folds exactly that one again and opens the others as they were', async () => {
    const { log } = await tempLog({ masterKey: newMasterKey(), redact });
    const subjects = Array.from({ length: 200 }, (_, i): Identity => ['customer', i]);
    await appendOk(log, subjects.map((subject, i) => action(subject, [{ op: 'add', path: '/email', value: `customer${i}@mail.example.org` }], { encrypt: { key: subject } })));
    const applied: (string | number)[] = [];
    const emails = log.projection<{ email?: unknown }>('emails', {
      apply: (state, event: ActionEvent) => {
        applied.push(event.action.aggregate[1]);
        return { ...state, email: (event.action.patch[0] as { value: unknown }).value };
      },
    });
    await emails.catchUp();
    expect(applied).toHaveLength(200);
    applied.length = 0;
    await log.keys.shred(['customer', 42]);
    const states = new Map<string | number, unknown>();
    for await (const [aggregate, state] of emails.entries()) states.set(aggregate[1], state);
    expect(applied).toEqual([42]);
    expect(states.size).toBe(200);
    expect(states.get(42)).toEqual({ email: ERASED });
    expect(states.get(41)).toEqual({ email: 'customer41@mail.example.org' });
    expect([...states.values()].filter((s) => (s as { email: unknown }).email === ERASED)).toHaveLength(1);
    // The catch-up meets the effect and folds the same one again, once.
    applied.length = 0;
    expect(await emails.catchUp()).toMatchObject({ actions: 0, replayed: 1 });
    expect(applied).toEqual([42]);
    expect(await emails.get(['customer', 42])).toEqual({ email: ERASED });
  });

  it('after a process is SIGKILLed between a shred and the catch-up, readers of the reopened store see the state redacted', async () => {
    const masterKey = newMasterKey();
    const path = tempDir();
    const alice: Identity = ['customer', 'alice'];
    const secret = 'alice-s-secret-address, 1 Rabbit Hole';
    const log = await openLog({ path, masterKey, redact });
    await appendOk(log, [action(['customer', 'alice'], [{ op: 'add', path: '/address', value: secret }], { encrypt: { key: alice } })]);
    await log.projection('addresses').catchUp();
    await log.close();

    const child = spawnChild('sealed-shred-and-hang.ts', [path, identityArg(alice)]);
    await child.line('shredded');
    child.process.kill('SIGKILL');
    expect(await child.exited).toBe('SIGKILL');

    const reopened = await openLog({ path, masterKey, redact });
    try {
      const addresses = reopened.projection('addresses');
      expect(await addresses.position()).toBe(1);
      expect(await addresses.get(alice)).toEqual({ address: ERASED });
      expect((await reopened.state(alice)).state).toEqual({ address: ERASED });
      await addresses.catchUp();
      expect(await addresses.get(alice)).toEqual({ address: ERASED });
    } finally {
      await reopened.close();
    }
    expect(filesContaining(path, secret)).toEqual([]);
  });
});
