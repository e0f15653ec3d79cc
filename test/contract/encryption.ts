import { describe, expect, it } from 'vitest';
import {
  CoherenceError,
  InvalidArgumentError,
  InvalidEventError,
  MissingMasterKeyError,
  WrongMasterKeyError,
  type Identity,
  type Log,
  type LogEvent,
  type NewAction,
} from '../../src/index.ts';
import { appendOk, appendSecrets, badMasterKeys, manualClock, newMasterKey, ok, patchOf, PUBLIC_TEXT, rejection, SECRETS, storeSnapshot } from '../support/crypto-fixtures.ts';
import { action, allEvents, type LogOptions } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = manualClock('2024-05-01T12:00:00.000Z');
const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

/** Lets tests hand the log what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

/** Alice signs up: a public name, and an e-mail encrypted under her key. */
function signUp(aggregate: Identity, key: Identity, name: string, email: string, paths: string[] | undefined = ['/email']): NewAction {
  return action(aggregate, [
    { op: 'add', path: '/name', value: name },
    { op: 'add', path: '/email', value: email },
  ], { reason: 'sign up', encrypt: paths === undefined ? { key } : { key, paths } });
}

async function openWithKey(engine: TestEngine, options: LogOptions = {}) {
  const masterKey = newMasterKey();
  const { log, reopen } = await engine.tempLog({ masterKey, clock: clock.read, ...options });
  return { log, reopen, masterKey };
}

async function collect(iterable: AsyncIterable<LogEvent>): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

export function encryption(engine: TestEngine): void {
  describe('encrypted values as stored', () => {
    it('stores an envelope in place of every encrypted value: raw reads hold none of the plaintext, and the unencrypted text of the same events', async () => {
      const { log } = await openWithKey(engine);
      await appendSecrets(log);
      expect((await log.state(alice)).state).toMatchObject({ email: SECRETS.replaced, ids: { ssn: SECRETS.ssn } });

      const raw = JSON.stringify(await collect(log.read({ raw: true })));
      for (const [name, secret] of Object.entries(SECRETS)) expect(raw.includes(secret), `plaintext ${name}`).toBe(false);
      for (const [name, text] of Object.entries(PUBLIC_TEXT)) expect(raw.includes(text), `public ${name}`).toBe(true);
    });
  });

  describe('reads of encrypted values', () => {
    it('shows the plaintext in read, get, state, conflicts and append results while the key lives', async () => {
      const { log } = await openWithKey(engine);
      const [stored] = await appendOk(log, [signUp(alice, aliceKey, 'Alice', 'alice@example.com')]);
      const expected = {
        seq: 1,
        timestamp: clock.now,
        source: 'test',
        action: {
          reason: 'sign up',
          actor: ['user', 'alice'],
          aggregate: alice,
          patch: [
            { op: 'add', path: '/name', value: 'Alice' },
            { op: 'add', path: '/email', value: 'alice@example.com' },
          ],
        },
        triggers: [aliceKey],
      };
      expect(stored).toEqual(expected);
      expect(await log.get(1)).toEqual(expected);
      expect(await allEvents(log)).toEqual([expected]);
      expect(await collect(log.read({ aggregates: [alice] }))).toEqual([expected]);
      expect(await log.state(alice)).toEqual({ state: { name: 'Alice', email: 'alice@example.com' }, head: 1 });
      expect(await log.conflicts(0, alice)).toEqual([expected]);

      const late = action(alice, [{ op: 'replace', path: '/email', value: 'new@example.com' }], { encrypt: { key: aliceKey } });
      const result = await log.append([late], { base: 0 });
      if (result.status !== 'conflict') throw new Error(`expected a conflict, got ${JSON.stringify(result)}`);
      expect(result.conflicts).toHaveLength(1);
      expect(result.conflicts[0]?.theirs).toEqual(expected);
      expect(patchOf(result.conflicts[0]?.ours)).toEqual([{ op: 'replace', path: '/email', value: 'new@example.com' }]);

      const [replaced] = ok(await log.append([late], { base: 1 }));
      expect(patchOf(replaced)).toEqual([{ op: 'replace', path: '/email', value: 'new@example.com' }]);
    });

    it('shows null in place of every encrypted value once the key is shredded, wherever a value is read', async () => {
      const { log } = await openWithKey(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', 'alice@example.com'), signUp(bob, bobKey, 'Bob', 'bob@example.com')]);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/card', value: { number: '4111 1111 1111 1111', cvc: 123 } }], { encrypt: { key: aliceKey } })]);
      const shred = await log.keys.shred(aliceKey);
      expect(shred.seq).toBe(4);

      const redacted = [
        { op: 'add', path: '/name', value: 'Alice' },
        { op: 'add', path: '/email', value: null },
      ];
      expect(patchOf(await log.get(1))).toEqual(redacted);
      expect(patchOf(await log.get(3))).toEqual([{ op: 'add', path: '/card', value: null }]);
      const events = await allEvents(log);
      expect(events.map((e) => ('action' in e ? e.action.patch : e.effect))).toEqual([
        redacted,
        [{ op: 'add', path: '/name', value: 'Bob' }, { op: 'add', path: '/email', value: 'bob@example.com' }],
        [{ op: 'add', path: '/card', value: null }],
        { reason: 'shredded', trigger: aliceKey },
      ]);
      expect(await log.state(alice)).toEqual({ state: { name: 'Alice', email: null, card: null }, head: 4 });
      expect(await log.state(bob)).toEqual({ state: { name: 'Bob', email: 'bob@example.com' }, head: 4 });
      expect((await log.conflicts(0, alice)).map((e) => ('action' in e ? e.action.patch : e.effect))).toEqual([
        redacted,
        [{ op: 'add', path: '/card', value: null }],
        { reason: 'shredded', trigger: aliceKey },
      ]);

      const result = await log.append([action(alice, [{ op: 'replace', path: '/name', value: 'A.' }])], { base: 0 });
      if (result.status !== 'conflict') throw new Error(`expected a conflict, got ${JSON.stringify(result)}`);
      expect(result.conflicts.map((c) => c.theirs.seq)).toEqual([1, 3, 4]);
      expect(patchOf(result.conflicts[0]?.theirs)).toEqual(redacted);
    });

    it('hands a custom redact function the aggregate, path and key of each value it replaces', async () => {
      const calls: unknown[] = [];
      const { log } = await openWithKey(engine, {
        redact: (context) => {
          calls.push(context);
          return `[erased ${context.path}]`;
        },
      });
      await appendOk(log, [action(alice, [
        { op: 'add', path: '/name', value: 'Alice' },
        { op: 'add', path: '/email', value: 'alice@example.com' },
        { op: 'add', path: '/phone', value: '+33 1 23 45 67 89' },
      ], { encrypt: { key: aliceKey, paths: ['/email', '/phone'] } })]);
      expect(patchOf(await log.get(1)).map((op) => op.value)).toEqual(['Alice', 'alice@example.com', '+33 1 23 45 67 89']);
      expect(calls).toEqual([]);

      await log.keys.shred(aliceKey);
      expect(patchOf(await log.get(1)).map((op) => op.value)).toEqual(['Alice', '[erased /email]', '[erased /phone]']);
      expect(calls).toEqual([
        { aggregate: alice, path: '/email', key: aliceKey },
        { aggregate: alice, path: '/phone', key: aliceKey },
      ]);
      expect((await log.state(alice)).state).toEqual({ name: 'Alice', email: '[erased /email]', phone: '[erased /phone]' });
    });

    it('yields the stored envelopes with raw: true, the same before and after the shred', async () => {
      const { log } = await openWithKey(engine);
      await appendOk(log, [action(alice, [
        { op: 'add', path: '/name', value: 'Alice' },
        { op: 'add', path: '/a', value: 'same value' },
        { op: 'add', path: '/b', value: 'same value' },
      ], { encrypt: { key: aliceKey, paths: ['/a', '/b'] } })]);
      const [before] = await collect(log.read({ raw: true }));
      const patch = patchOf(before);
      expect(patch[0]).toEqual({ op: 'add', path: '/name', value: 'Alice' });
      const envelopes = patch.slice(1).map((op) => op.value as { envelope: string; key: Identity; data: string });
      for (const envelope of envelopes) {
        expect(envelope).toEqual({ envelope: 'xchacha20-poly1305', key: aliceKey, data: expect.any(String) });
        const bytes = Buffer.from(envelope.data, 'base64');
        // version, 24-byte nonce, the msgpack of 'same value' (11 bytes), 16-byte tag
        expect(bytes.length).toBe(1 + 24 + 11 + 16);
        expect(bytes[0]).toBe(1);
        expect(bytes.includes(Buffer.from('same value'))).toBe(false);
      }
      // A fresh random nonce per value: equal plaintexts do not give equal envelopes.
      expect(envelopes[0]?.data).not.toBe(envelopes[1]?.data);

      await log.keys.shred(aliceKey);
      const after = await collect(log.read({ raw: true }));
      expect(after[0]).toEqual(before);
      expect(after[1]).toMatchObject({ effect: { reason: 'shredded', trigger: aliceKey } });
    });
  });

  describe('which values are encrypted', () => {
    /** Which operations of the first event are stored as envelopes. */
    async function encryptedPaths(log: Log): Promise<string[]> {
      const [event] = await collect(log.read({ raw: true }));
      return patchOf(event)
        .filter((op) => typeof op.value === 'object' && op.value !== null && 'envelope' in op.value)
        .map((op) => `${op.op} ${op.path}`);
    }

    it('encrypts every valued operation when no paths are given, and leaves remove, move and copy as they are', async () => {
      const { log } = await openWithKey(engine);
      const patch = [
        { op: 'add', path: '/a', value: 'one' },
        { op: 'add', path: '/b', value: { deep: [1, 2] } },
        { op: 'replace', path: '/a', value: 2 },
        { op: 'test', path: '/a', value: 2 },
        { op: 'copy', path: '/c', from: '/b' },
        { op: 'move', path: '/d', from: '/c' },
        { op: 'remove', path: '/d' },
        { op: 'add', path: '/n', value: null },
      ] as const;
      const [stored] = await appendOk(log, [action(alice, [...patch], { encrypt: { key: aliceKey } })]);
      expect(patchOf(stored)).toEqual(patch);
      expect(await encryptedPaths(log)).toEqual(['add /a', 'add /b', 'replace /a', 'test /a', 'add /n']);
      const [raw] = await collect(log.read({ raw: true }));
      expect(patchOf(raw).slice(4, 7)).toEqual(patch.slice(4, 7));
      expect(await log.state(alice)).toEqual({ state: { a: 2, b: { deep: [1, 2] }, n: null }, head: 1 });
    });

    it('encrypts only the values at or under the given paths, and the whole of a value that contains one', async () => {
      const { log } = await openWithKey(engine);
      await appendOk(log, [action(alice, [
        { op: 'add', path: '/name', value: 'Alice' },
        { op: 'add', path: '/contact', value: { email: 'a@example.com', city: 'Lyon' } },
        { op: 'add', path: '/contact/email', value: 'b@example.com' },
        { op: 'add', path: '/contact/phone', value: '+33 1 00 00 00 00' },
        { op: 'add', path: '/ssn', value: { number: '1 85 05 78 006 084 36' } },
        { op: 'add', path: '/ssn/number', value: 'x' },
        { op: 'add', path: '/ssnx', value: 'not under /ssn' },
        { op: 'replace', path: '/name', value: 'Alice B.' },
        { op: 'test', path: '/ssn/number', value: 'x' },
        { op: 'add', path: '/', value: 'the empty key, not the root' },
        { op: 'add', path: '/contact~1email', value: 'a key with a slash in it' },
        { op: 'replace', path: '', value: { whole: 'document' } },
      ], { encrypt: { key: aliceKey, paths: ['/contact/email', '/ssn'] } })]);
      expect(await encryptedPaths(log)).toEqual([
        'add /contact',
        'add /contact/email',
        'add /ssn',
        'add /ssn/number',
        'test /ssn/number',
        'replace ',
      ]);
      expect(patchOf(await log.get(1)).map((op) => op.value)).toEqual([
        'Alice',
        { email: 'a@example.com', city: 'Lyon' },
        'b@example.com',
        '+33 1 00 00 00 00',
        { number: '1 85 05 78 006 084 36' },
        'x',
        'not under /ssn',
        'Alice B.',
        'x',
        'the empty key, not the root',
        'a key with a slash in it',
        { whole: 'document' },
      ]);
    });

    it('adds the key identity to the triggers of the action, once, after the given ones', async () => {
      const { log } = await openWithKey(engine);
      const consent: Identity = ['consent', 'newsletter'];
      const [first, second, third] = await appendOk(log, [
        signUp(alice, aliceKey, 'Alice', 'a@example.com'),
        { ...signUp(bob, bobKey, 'Bob', 'b@example.com'), triggers: [consent] },
        { ...signUp(['customer', 'carol'], aliceKey, 'Carol', 'c@example.com'), triggers: [aliceKey, consent] },
      ]);
      expect(first).toMatchObject({ triggers: [aliceKey] });
      expect(second).toMatchObject({ triggers: [consent, bobKey] });
      expect(third).toMatchObject({ triggers: [aliceKey, consent] });
      expect((await allEvents(log)).map((e) => ('triggers' in e ? e.triggers : []))).toEqual([[aliceKey], [consent, bobKey], [aliceKey, consent]]);
    });

    it('refuses an encrypt option with a bad key identity or bad paths, and writes nothing', async () => {
      const { log } = await openWithKey(engine);
      for (const [encrypt, path] of [
        [{ key: ['user'] }, 'encrypt.key'],
        [{ key: ['', 'alice'] }, 'encrypt.key[0]'],
        [{ key: ['user', 1.5] }, 'encrypt.key[1]'],
        [{ key: 'alice' }, 'encrypt.key'],
        [{ key: aliceKey, paths: [] }, 'encrypt.paths'],
        [{ key: aliceKey, paths: ['email'] }, 'encrypt.paths[0]'],
        [{ key: aliceKey, extra: true }, 'encrypt.extra'],
      ] as const) {
        const event = { ...action(alice, [{ op: 'add', path: '/email', value: 'a@example.com' }]), encrypt: loose<{ key: Identity }>(encrypt) };
        const error = await rejection(log.append([event], { base: 0 }));
        expect(error, JSON.stringify(encrypt)).toBeInstanceOf(InvalidEventError);
        expect(error).toMatchObject({ index: 0, path });
      }
      expect(await storeSnapshot(log)).toEqual({ head: 0, events: [], keys: [] });
    });
  });

  describe('the master key', () => {
    it('refuses a wrong master key at openLog with WrongMasterKeyError, and the right one still opens the store', async () => {
      const { log, reopen, masterKey } = await openWithKey(engine);
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', 'alice@example.com')]);
      await log.close();

      const error = await rejection(reopen({ masterKey: newMasterKey() }));
      expect(error).toBeInstanceOf(WrongMasterKeyError);
      expect(error).toBeInstanceOf(CoherenceError);
      expect(error).toMatchObject({ code: 'WRONG_MASTER_KEY' });
      // The same key as bytes is the same key.
      const bytes = Uint8Array.from(Buffer.from(newMasterKey(), 'hex'));
      expect(await rejection(reopen({ masterKey: bytes }))).toBeInstanceOf(WrongMasterKeyError);

      const again = await reopen({ masterKey: Uint8Array.from(Buffer.from(masterKey, 'hex')) });
      expect(patchOf(await again.get(1))[1]?.value).toBe('alice@example.com');
    });

    it('refuses a wrong master key even on a store that has no encrypted value yet', async () => {
      const { log, reopen } = await engine.tempLog({ masterKey: newMasterKey() });
      await log.close();
      expect(await rejection(reopen({ masterKey: newMasterKey() }))).toBeInstanceOf(WrongMasterKeyError);
    });

    it('leaves the caller\'s master key bytes as they were', async () => {
      const masterKey = Uint8Array.from(Buffer.from(newMasterKey(), 'hex'));
      const copy = Uint8Array.from(masterKey);
      const { log } = await engine.tempLog({ masterKey });
      await appendOk(log, [signUp(alice, aliceKey, 'Alice', 'alice@example.com')]);
      expect(masterKey).toEqual(copy);
    });

    it('refuses a master key of the wrong length or format with InvalidArgumentError, recording nothing and echoing no key', async () => {
      const hex = newMasterKey();
      const { reopen } = await engine.tempLog();
      for (const masterKey of badMasterKeys(hex)) {
        const error = await rejection(reopen({ masterKey: loose<string>(masterKey) }));
        expect(error, String(masterKey)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(/masterKey/);
        expect((error as Error).message).not.toContain(hex.slice(0, 16));
      }
      // No master key was taken as the store's: any other one still opens it.
      expect(await (await reopen({ masterKey: newMasterKey() })).head()).toBe(0);
    });

    it('refuses to encrypt without a master key with MissingMasterKeyError, and writes nothing', async () => {
      const { log } = await engine.tempLog({ clock: clock.read });
      const error = await rejection(log.append([signUp(alice, aliceKey, 'Alice', 'alice@example.com')], { base: 0 }));
      expect(error).toBeInstanceOf(MissingMasterKeyError);
      expect(error).toMatchObject({ code: 'MISSING_MASTER_KEY' });
      expect(await rejection(log.keys.create(aliceKey))).toBeInstanceOf(MissingMasterKeyError);
      expect(await storeSnapshot(log)).toEqual({ head: 0, events: [], keys: [] });
      // Unencrypted appends need no master key.
      await appendOk(log, [action(alice, [{ op: 'add', path: '/name', value: 'Alice' }])]);
    });

    it('refuses to read a value under a live key without a master key, but gives raw envelopes, and the redact value once it is shredded', async () => {
      const { log: writer, reopen } = await openWithKey(engine);
      await appendOk(writer, [signUp(alice, aliceKey, 'Alice', 'alice@example.com'), signUp(bob, bobKey, 'Bob', 'bob@example.com')]);
      await appendOk(writer, [action(['customer', 'dave'], [{ op: 'add', path: '/name', value: 'Dave' }])]);
      await writer.close();

      const log = await reopen();
      expect(await rejection(log.get(1))).toBeInstanceOf(MissingMasterKeyError);
      expect(await rejection(allEvents(log))).toBeInstanceOf(MissingMasterKeyError);
      expect(await rejection(log.state(alice))).toBeInstanceOf(MissingMasterKeyError);
      expect(await rejection(log.conflicts(0, alice))).toBeInstanceOf(MissingMasterKeyError);
      expect(await log.state(['customer', 'dave'])).toEqual({ state: { name: 'Dave' }, head: 3 });
      const raw = await collect(log.read({ raw: true }));
      expect(patchOf(raw[0])[1]?.value).toMatchObject({ envelope: 'xchacha20-poly1305', key: aliceKey });

      // Shredding needs no master key; what it destroyed reads as redacted, without one too.
      await log.keys.shred(aliceKey);
      expect(patchOf(await log.get(1))).toEqual([{ op: 'add', path: '/name', value: 'Alice' }, { op: 'add', path: '/email', value: null }]);
      expect(await log.state(alice)).toEqual({ state: { name: 'Alice', email: null }, head: 4 });
      expect(await rejection(log.get(2))).toBeInstanceOf(MissingMasterKeyError);
    });
  });

  describe('pipelined appends', () => {
    it('meet the log in the order they were made, though some must read their keys first', async () => {
      const { log } = await engine.tempLog({ masterKey: newMasterKey() });
      // Each append names the base its predecessors leave, all in flight at once; every third
      // encrypts under a new key (a read of the key ring before it can be written).
      const pending = Array.from({ length: 30 }, (_, i) => {
        const event = action(['book', i % 4], [{ op: 'add', path: `/n${i}`, value: i }], i % 3 === 0 ? { encrypt: { key: ['customer', i] } } : {});
        return log.append([event], { base: i });
      });
      const results = await Promise.all(pending);
      expect(results.map((r) => r.status)).toEqual(Array(30).fill('ok'));
      expect(results.map((r) => (r.status === 'ok' ? r.events[0]?.seq : 0))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(patchOf(await log.get(4))[0]?.value).toBe(3);
    });
  });

  describe('appends that write nothing', () => {
    it('creates no key for a dry run that encrypts with a new key', async () => {
      const { log } = await openWithKey(engine);
      const result = await log.append([signUp(alice, aliceKey, 'Alice', 'alice@example.com')], { base: 0, dryRun: true });
      expect(result.status).toBe('ok');
      expect(patchOf(ok(result)[0])[1]?.value).toBe('alice@example.com');
      expect(await storeSnapshot(log)).toEqual({ head: 0, events: [], keys: [] });
      expect(await log.keys.get(aliceKey)).toBeUndefined();
    });

    it('creates no key for a conflicting append that encrypts with a new key', async () => {
      const { log } = await openWithKey(engine);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/name', value: 'Alice' }])]);
      const before = await storeSnapshot(log);
      const result = await log.append([signUp(alice, aliceKey, 'Alice', 'alice@example.com')], { base: 0 });
      expect(result.status).toBe('conflict');
      expect(await storeSnapshot(log)).toEqual(before);
      expect(await log.keys.get(aliceKey)).toBeUndefined();
    });

    it('creates no key for a batch refused as invalid', async () => {
      const { log } = await openWithKey(engine);
      const error = await rejection(log.append([
        signUp(alice, aliceKey, 'Alice', 'alice@example.com'),
        action(bob, [{ op: 'add', path: 'no-slash', value: 1 }]),
      ], { base: 0 }));
      expect(error).toMatchObject({ index: 1 });
      expect(await storeSnapshot(log)).toEqual({ head: 0, events: [], keys: [] });
    });
  });
}
