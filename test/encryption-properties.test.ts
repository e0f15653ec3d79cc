import fc from 'fast-check';
import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { xchachaSeal } from '../src/crypto/aead.ts';
import { drawNonces, openValue, openValueUnderAll, sealValue, sealValueUnderAll } from '../src/crypto/envelope.ts';
import { openSealed, sealBytes } from '../src/crypto/seal.ts';
import { packr } from '../src/model/msgpack.ts';
import { CorruptLogError, openLog, type Identity, type Log } from '../src/index.ts';
import { decodeBody, encodeBody, recordHash, type ActionBody } from '../src/log/record.ts';
import { appendOk, asJson, jsonValue, newMasterKey, patchOf, rejection } from './support/crypto-fixtures.ts';
import { action, allEvents, tempDir } from './support/temp-log.ts';

const identity: fc.Arbitrary<Identity> = fc.tuple(fc.string({ minLength: 1 }), fc.oneof(fc.string({ minLength: 1 }), fc.maxSafeInteger()));
const pointer = fc.array(fc.string(), { maxLength: 4 }).map((segments) => segments.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join(''));
const keyBytes = fc.uint8Array({ minLength: 32, maxLength: 32 });

function seal(value: unknown, key: Uint8Array, keyId: Identity, aggregate: Identity, path: string): Uint8Array {
  return sealValue(value, key, keyId, aggregate, path, drawNonces(1), 0);
}

function corruptError(open: () => unknown): unknown {
  try {
    open();
  } catch (e) {
    return e;
  }
  return 'no error';
}

describe('envelopes', () => {
  it('decrypts with openValue every JSON value sealValue encrypted', () => {
    fc.assert(
      fc.property(jsonValue, keyBytes, identity, identity, pointer, (value, key, keyId, aggregate, path) => {
        const envelope = seal(value, key, keyId, aggregate, path);
        expect(openValue(envelope, key, keyId, aggregate, path, 1)).toEqual(asJson(value));
      }),
      { numRuns: 300 },
    );
  });

  it('throws CorruptLogError from openValue for any flipped bit of an envelope', () => {
    fc.assert(
      fc.property(jsonValue, keyBytes, identity, identity, pointer, fc.nat(), (value, key, keyId, aggregate, path, bit) => {
        const envelope = seal(value, key, keyId, aggregate, path);
        const flipped = Uint8Array.from(envelope);
        const at = bit % (flipped.length * 8);
        flipped[at >> 3] = (flipped[at >> 3] as number) ^ (1 << (at & 7));
        expect(corruptError(() => openValue(flipped, key, keyId, aggregate, path, 1))).toBeInstanceOf(CorruptLogError);
      }),
      { numRuns: 300 },
    );
  });

  it('throws CorruptLogError from openValue, quoting none of the plaintext, for an authentic envelope whose plaintext is not one value', () => {
    const key = new Uint8Array(32).fill(3);
    const nonce = new Uint8Array(24).fill(4);
    const associatedData = `coherence/value/v1\u0000${JSON.stringify([['customer', 'alice'], '/v', ['user', 'alice']])}`;
    // Nothing; a string cut short; a whole value with more after it (msgpackr's own error for
    // that one quotes the value it read).
    for (const plaintext of [Uint8Array.of(), Uint8Array.of(0xd9, 10, 0x73), Buffer.concat([packr.pack('secret-4242'), packr.pack('secret-4343')])]) {
      const envelope = xchachaSeal(key, nonce, associatedData, plaintext, 25);
      envelope[0] = 1;
      envelope.set(nonce, 1);
      const error = corruptError(() => openValue(envelope, key, ['user', 'alice'], ['customer', 'alice'], '/v', 7));
      expect(error).toBeInstanceOf(CorruptLogError);
      expect((error as Error).message).toBe('event 7: the encrypted value at /v opens to bytes that are not a value');
      expect((error as Error).cause).toBeUndefined();
    }
    // The same bytes around a value decode: the envelope was built as sealValue builds one.
    const envelope = xchachaSeal(key, nonce, associatedData, packr.pack('secret-4242'), 25);
    envelope[0] = 1;
    envelope.set(nonce, 1);
    expect(openValue(envelope, key, ['user', 'alice'], ['customer', 'alice'], '/v', 7)).toBe('secret-4242');
  });

  it('throws CorruptLogError from openSealed and openValueUnderAll, quoting none of the plaintext, for an authentic sealed record whose plaintext is not one value', () => {
    const materials = [new Uint8Array(32).fill(5), new Uint8Array(32).fill(6)];
    const keyIds: Identity[] = [['user', 'alice'], ['user', 'bob']];
    const salt = new Uint8Array(32).fill(7);
    const ad = new TextEncoder().encode('coherence/sealed/v1\u0000test');
    for (const plaintext of [Uint8Array.of(), Uint8Array.of(0xd9, 10, 0x73), Buffer.concat([packr.pack('secret-4242'), packr.pack('secret-4343')])]) {
      const error = corruptError(() => openSealed(sealBytes(plaintext, materials, salt, ad), materials, salt, ad, 'the state of x'));
      expect(error).toBeInstanceOf(CorruptLogError);
      expect((error as Error).message).toBe('the state of x: the sealed record opens to bytes that are not a value');
      expect((error as Error).cause).toBeUndefined();
    }
    expect(openSealed(sealBytes(packr.pack({ card: 'secret-4242' }), materials, salt, ad), materials, salt, ad, 'the state of x')).toEqual({ card: 'secret-4242' });
    // A value sealed under several keys opens through the same function.
    const envelope = sealValueUnderAll('secret-4242', materials, keyIds, ['customer', 'alice'], '/v', salt);
    expect(openValueUnderAll(envelope, materials, keyIds, ['customer', 'alice'], '/v', 7)).toBe('secret-4242');
  });

  it('throws CorruptLogError from openValue for a truncated or extended envelope', () => {
    fc.assert(
      fc.property(jsonValue, keyBytes, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 }), (value, key, cut, extra) => {
        const envelope = seal(value, key, ['user', 'alice'], ['customer', 'alice'], '/v');
        const truncated = envelope.subarray(0, cut % envelope.length);
        const extended = Uint8Array.from([...envelope, ...extra]);
        for (const bad of [truncated, extended]) {
          expect(corruptError(() => openValue(bad, key, ['user', 'alice'], ['customer', 'alice'], '/v', 1))).toBeInstanceOf(CorruptLogError);
        }
      }),
    );
  });

  it('throws CorruptLogError from openValue when the ciphertext is moved to another aggregate, path or key, or opened with other key bytes', () => {
    fc.assert(
      fc.property(
        jsonValue,
        keyBytes,
        fc.record({ keyId: identity, aggregate: identity, path: pointer }),
        fc.record({ keyId: identity, aggregate: identity, path: pointer, key: keyBytes }),
        fc.constantFrom('keyId', 'aggregate', 'path', 'key'),
        (value, key, from, other, moved) => {
          const target = { ...from, key, [moved]: other[moved] };
          fc.pre(JSON.stringify(target[moved]) !== JSON.stringify(moved === 'key' ? key : from[moved as 'keyId' | 'aggregate' | 'path']));
          const envelope = seal(value, key, from.keyId, from.aggregate, from.path);
          expect(corruptError(() => openValue(envelope, target.key, target.keyId, target.aggregate, target.path, 1))).toBeInstanceOf(CorruptLogError);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('encrypted values in the store', () => {
  /**
   * A closed store with one event (seq 1) on ['customer', 'alice'] holding an unencrypted value
   * and two encrypted ones at /a and /b, and one event (seq 2) on ['customer', 'bob'] holding an
   * encrypted value at /a, all under live keys.
   */
  async function storeWithEnvelopes() {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    await appendOk(log, [
      action(['customer', 'alice'], [
        { op: 'add', path: '/name', value: 'Alice' },
        { op: 'add', path: '/a', value: 'alice-a' },
        { op: 'add', path: '/b', value: 'alice-b' },
      ], { encrypt: { key: ['user', 'alice'], paths: ['/a', '/b'] } }),
      action(['customer', 'bob'], [{ op: 'add', path: '/a', value: 'bob-a' }], { encrypt: { key: ['user', 'alice'] } }),
      action(['customer', 'carol'], [{ op: 'add', path: '/a', value: 'carol' }], { encrypt: { key: ['user', 'carol'] } }),
    ]);
    await log.close();
    return { path, masterKey };
  }

  /** Rewrites stored records through a raw LMDB handle, with the store closed. */
  async function rewrite(path: string, change: (records: Map<number, Buffer>) => void): Promise<void> {
    const root = open({ path, maxDbs: 16 });
    const events = root.openDB<Buffer, number>({ name: 'events', encoding: 'binary' });
    const records = new Map<number, Buffer>();
    for (const { key, value } of events.getRange()) records.set(key, Buffer.from(value));
    const before = new Map([...records].map(([seq, record]) => [seq, Buffer.from(record)]));
    change(records);
    await root.transaction(() => {
      for (const [seq, record] of records) if (!record.equals(before.get(seq) as Buffer)) events.put(seq, record);
    });
    await root.close();
  }

  /** Every way of reading event `seq` of `aggregate` that decrypts. */
  async function readsOf(log: Log, seq: number, aggregate: Identity): Promise<unknown[]> {
    return [
      await rejection(log.get(seq)),
      await rejection(allEvents(log)),
      await rejection(log.state(aggregate)),
      await rejection(log.conflicts(0, aggregate)),
    ];
  }

  it('throws CorruptLogError, never a redacted value, for any flipped bit of a stored envelope', async () => {
    const { path, masterKey } = await storeWithEnvelopes();
    let pristine: Buffer | undefined;
    await rewrite(path, (records) => {
      pristine = Buffer.from(records.get(1) as Buffer);
    });
    const body = decodeBody(pristine as Buffer, 1) as ActionBody;
    const envelopes = [body[6][1]?.[2], body[6][2]?.[2]].map((e) => Buffer.from(e as Uint8Array));
    const offsets = envelopes.map((e) => (pristine as Buffer).indexOf(e));
    expect(offsets.every((o) => o > 0)).toBe(true);

    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0, 1), fc.nat(), async (which, bit) => {
        const envelope = envelopes[which] as Buffer;
        const at = bit % (envelope.length * 8);
        await rewrite(path, (records) => {
          const record = Buffer.from(pristine as Buffer);
          const index = (offsets[which] as number) + (at >> 3);
          record.writeUInt8(record.readUInt8(index) ^ (1 << (at & 7)), index);
          records.set(1, record);
        });
        const log = await openLog({ path, masterKey });
        try {
          for (const error of await readsOf(log, 1, ['customer', 'alice'])) expect(error).toBeInstanceOf(CorruptLogError);
          // Other events still read, and the chain reports the change.
          expect(patchOf(await log.get(2))[0]?.value).toBe('bob-a');
          expect(await log.verify()).toMatchObject({ ok: false, seq: 1 });
          // A raw read does not decrypt, so it shows the tampered envelope as stored.
          const raw = [];
          for await (const event of log.read({ raw: true, aggregates: [['customer', 'alice']] })) raw.push(event);
          const shown = patchOf(raw[0])[which + 1]?.value as { data: string };
          expect(Buffer.from(shown.data, 'base64').equals(envelope)).toBe(false);
          expect(Buffer.from(shown.data, 'base64').length).toBe(envelope.length);
        } finally {
          await log.close();
        }
      }),
      { numRuns: 40 },
    );

    await rewrite(path, (records) => records.set(1, pristine as Buffer));
    const log = await openLog({ path, masterKey });
    try {
      expect(await log.verify()).toEqual({ ok: true, events: 3 });
      expect(patchOf(await log.get(1)).map((op) => op.value)).toEqual(['Alice', 'alice-a', 'alice-b']);
    } finally {
      await log.close();
    }
  });

  /** Changes the body of stored record `seq`, keeping its (now wrong) hash. */
  function changeBody(records: Map<number, Buffer>, seq: number, change: (body: ActionBody, bodies: Map<number, ActionBody>) => void): void {
    const bodies = new Map([...records].map(([s, r]) => [s, decodeBody(r, s) as ActionBody]));
    const body = bodies.get(seq) as ActionBody;
    change(body, bodies);
    const record = encodeBody(body);
    record.set(recordHash(records.get(seq) as Buffer), 1);
    records.set(seq, record);
  }

  const moves: [string, number, Identity, (body: ActionBody, bodies: Map<number, ActionBody>) => void][] = [
    ['to another path of the same event', 1, ['customer', 'alice'], (body) => {
      const [a, b] = [body[6][1] as [number, string, unknown], body[6][2] as [number, string, unknown]];
      [a[2], b[2]] = [b[2], a[2]];
    }],
    ['to the same path of another aggregate', 2, ['customer', 'bob'], (body, bodies) => {
      (body[6][0] as [number, string, unknown])[2] = (bodies.get(1)?.[6][1] as [number, string, unknown])[2];
    }],
    ['to another aggregate by renaming the event\'s aggregate', 2, ['customer', 'bob'], (body) => {
      body[5] = ['customer', 'alice'];
    }],
    ['under another live key', 3, ['customer', 'carol'], (body) => {
      body[8] = ['user', 'alice'];
    }],
    ['to another path by renaming the operation\'s path', 2, ['customer', 'bob'], (body) => {
      (body[6][0] as [number, string, unknown])[1] = '/b';
    }],
  ];

  it('still reads a stored record re-encoded unchanged, so the moves below fail for the move alone', async () => {
    const { path, masterKey } = await storeWithEnvelopes();
    await rewrite(path, (records) => {
      for (const seq of [1, 2, 3]) changeBody(records, seq, () => {});
    });
    const log = await openLog({ path, masterKey });
    try {
      expect(await log.verify()).toEqual({ ok: true, events: 3 });
      expect((await allEvents(log)).map((e) => patchOf(e).map((op) => op.value))).toEqual([['Alice', 'alice-a', 'alice-b'], ['bob-a'], ['carol']]);
    } finally {
      await log.close();
    }
  });

  for (const [where, seq, aggregate, move] of moves) {
    it(`throws CorruptLogError for a stored ciphertext moved ${where}`, async () => {
      const { path, masterKey } = await storeWithEnvelopes();
      await rewrite(path, (records) => changeBody(records, seq, move));
      const log = await openLog({ path, masterKey });
      try {
        for (const error of await readsOf(log, seq, aggregate)) expect(error).toBeInstanceOf(CorruptLogError);
      } finally {
        await log.close();
      }
    });
  }
});
