import { open, type Database, type Key } from 'lmdb';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { CoherenceError, openLog, UnsupportedFormatError } from '../src/index.ts';
import type { Identity } from '../src/index.ts';
import { linkKeyOf } from '../src/storage/lmdb/layout.ts';
import { action, tempLog, verifyClosed } from './support/temp-log.ts';
import { a, b, c, key1, populate } from './support/verify-fixtures.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');

/** A populated store, verified ok and closed, ready to be tampered with. */
async function closedStore(): Promise<string> {
  const { log, path } = await tempLog({ clock });
  await populate(log);
  expect(await log.verify()).toEqual({ ok: true, events: 9 });
  await log.close();
  return path;
}

interface Raw {
  meta: Database<Buffer, string>;
  events: Database<Buffer, number>;
  byAggregate: Database<Buffer, Key>;
  triggerLinks: Database<Buffer, Key>;
  effects: Database<Buffer, number>;
  effectsByAggregate: Database<Buffer, Key>;
}

/** Opens the closed store with lmdb itself and changes it behind coherence's back. */
async function tamper(path: string, change: (raw: Raw) => void): Promise<void> {
  const root = open({ path, maxDbs: 16 });
  const db = <K extends Key>(name: string) => root.openDB<Buffer, K>({ name, encoding: 'binary' });
  const raw: Raw = {
    meta: db<string>('meta'),
    events: db<number>('events'),
    byAggregate: db('by-aggregate'),
    triggerLinks: db('trigger-links'),
    effects: db<number>('effects'),
    effectsByAggregate: db('effects-by-aggregate'),
  };
  await root.transaction(() => change(raw));
  await root.close();
}

function record(raw: Raw, seq: number): Buffer {
  const stored = raw.events.getBinary(seq);
  if (stored === undefined) throw new Error(`no event ${seq}`);
  return Buffer.from(stored);
}

const packr = new Packr({ useRecords: false });

/** A trigger link's value: the seq of the action that made it. */
function seqValue(seq: number): Buffer {
  const value = Buffer.alloc(8);
  value.writeDoubleBE(seq);
  return value;
}

describe('verify', () => {
  it('names the event whose body bytes were changed', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      const bytes = record(raw, 5);
      bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0x01;
      raw.events.put(5, bytes);
    });
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 5, reason: expect.stringMatching(/hash/) });
  });

  it('names the event whose stored hash was changed', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      const bytes = record(raw, 3);
      bytes[10] = (bytes[10] as number) ^ 0xff;
      raw.events.put(3, bytes);
    });
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 3, reason: expect.stringMatching(/hash/) });
  });

  it('names the seq of a deleted event', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.events.remove(5));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 5, reason: expect.stringMatching(/gap/) });
  });

  it('notices a deleted last event through the index entries left behind', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.events.remove(9));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 9, reason: expect.stringMatching(/aggregate index/) });
  });

  it('names the seq of two swapped events', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      const second = record(raw, 2);
      const fifth = record(raw, 5);
      raw.events.put(2, fifth);
      raw.events.put(5, second);
    });
    expect(await verifyClosed(path, { clock })).toMatchObject({ ok: false, seq: 2 });
  });

  it('names the action whose aggregate-index entry was removed', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      expect(raw.byAggregate.doesExist([b[0], b[1], 2])).toBe(true);
      raw.byAggregate.remove([b[0], b[1], 2]);
    });
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 2, reason: expect.stringMatching(/aggregate index/) });
  });

  it('names the seq a bogus aggregate-index entry claims', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.byAggregate.put(['book', 'ghost', 3], Buffer.alloc(0)));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 3, reason: expect.stringMatching(/aggregate index/) });
  });

  it('names the seq of a bogus aggregate-index entry beyond the head', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.byAggregate.put([a[0], a[1], 50], Buffer.alloc(0)));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 50, reason: expect.stringMatching(/aggregate index/) });
  });

  it('names the action whose trigger link was removed', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      expect(raw.triggerLinks.doesExist([key1[0], key1[1], c[0], c[1]])).toBe(true);
      raw.triggerLinks.remove([key1[0], key1[1], c[0], c[1]]);
    });
    // Event 3 is the first to disagree with the index (the effect at 4 then disagrees too).
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 3, reason: expect.stringMatching(/trigger index/) });
  });

  it('names the action a trigger link claims to be made after', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.triggerLinks.put([key1[0], key1[1], c[0], c[1]], seqValue(5)));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 3, reason: expect.stringMatching(/trigger index/) });
  });

  it('names the seq a trigger link claims when it is earlier than the action that made it', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.triggerLinks.put([key1[0], key1[1], c[0], c[1]], seqValue(2)));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 2, reason: expect.stringMatching(/trigger index has an entry no event accounts for/) });
  });

  it('names the seq a bogus trigger link claims', async () => {
    const path = await closedStore();
    // Event 5 is an action on a, but links nothing (and no effect names this trigger).
    await tamper(path, (raw) => raw.triggerLinks.put(['key', 'ghost', a[0], a[1]], seqValue(5)));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 5, reason: expect.stringMatching(/trigger index has an entry no event accounts for/) });
  });

  describe('links of identities too long to share a key (stored under a hash of the aggregate)', () => {
    const trigger: Identity = ['t'.repeat(512), 'i'.repeat(512)];
    const long: Identity = ['k'.repeat(512), 'a'.repeat(512)];

    async function linkedStore(): Promise<string> {
      const { log, path } = await tempLog({ clock });
      await log.append([action(long, [{ op: 'add', path: '/n', value: 1 }], { triggers: [trigger] }), action(b, [{ op: 'add', path: '/n', value: 1 }])], { base: 0 });
      expect(await log.verify()).toEqual({ ok: true, events: 2 });
      await log.close();
      return path;
    }

    it('names the action whose hashed link names another aggregate', async () => {
      const path = await linkedStore();
      await tamper(path, (raw) => {
        const value = raw.triggerLinks.getBinary(linkKeyOf(trigger, long));
        expect(value).toBeDefined();
        raw.triggerLinks.put(linkKeyOf(trigger, long), Buffer.concat([seqValue(1), packr.pack(b)]));
      });
      expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 1, reason: expect.stringMatching(/trigger index/) });
    });

    it('names the seq of a copy of a hashed link under another key', async () => {
      const path = await linkedStore();
      await tamper(path, (raw) => {
        const value = raw.triggerLinks.getBinary(linkKeyOf(trigger, long)) as Buffer;
        raw.triggerLinks.put([trigger[0], trigger[1], 'not-the-hash'], Buffer.from(value));
      });
      expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 1, reason: expect.stringMatching(/trigger index has an entry no event accounts for/) });
    });
  });

  it('names the effect whose effect-index entry was removed', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      expect(raw.effectsByAggregate.doesExist([c[0], c[1], 4])).toBe(true);
      raw.effectsByAggregate.remove([c[0], c[1], 4]);
    });
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 4, reason: expect.stringMatching(/effect index/) });
  });

  it('names the effect whose recorded affected aggregates were changed', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => raw.effects.put(4, packr.pack([a])));
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 4, reason: expect.stringMatching(/affected aggregates/) });
  });

  it('checks the hash of events larger than 64 KiB as of any other, and names a changed one', async () => {
    const { log, path } = await tempLog({ clock });
    const big = (n: number) => action(['doc', n], [{ op: 'add', path: '/text', value: 'x'.repeat(100_000 + n) }]);
    await log.append([big(1), big(2)], { base: 0 });
    await log.append([action(a, [{ op: 'add', path: '/n', value: 1 }])], { base: 2 });
    expect(await log.verify()).toEqual({ ok: true, events: 3 });
    await log.close();
    await tamper(path, (raw) => {
      const bytes = record(raw, 2);
      bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0x01;
      raw.events.put(2, bytes);
    });
    expect(await verifyClosed(path, { clock })).toEqual({ ok: false, seq: 2, reason: expect.stringMatching(/hash/) });
  });

  it('names the first bad seq when several are bad', async () => {
    const path = await closedStore();
    await tamper(path, (raw) => {
      const bytes = record(raw, 7);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
      raw.events.put(7, bytes);
      raw.byAggregate.remove([b[0], b[1], 2]);
    });
    expect(await verifyClosed(path, { clock })).toMatchObject({ ok: false, seq: 2 });
  });
});

describe('format version', () => {
  it('refuses to open a store written by a newer format version, and leaves it as it was', async () => {
    const path = await closedStore();
    let original: Buffer | undefined;
    await tamper(path, (raw) => {
      original = raw.meta.getBinary('format');
      raw.meta.put('format', packr.pack(999));
    });
    const error = await openLog({ path, clock }).then(
      async (log) => { await log.close(); return undefined; },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect(error).toBeInstanceOf(CoherenceError);
    expect(error).toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
    expect((error as Error).message).toMatch(/999/);

    // The refused store is untouched and was released: restoring the version opens it again.
    await tamper(path, (raw) => {
      expect(packr.unpack(raw.meta.getBinary('format') as Buffer)).toBe(999);
      raw.meta.put('format', original as Buffer);
    });
    expect(await verifyClosed(path, { clock })).toEqual({ ok: true, events: 9 });
  });
});
