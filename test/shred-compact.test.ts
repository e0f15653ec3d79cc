import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openValue } from '../src/crypto/envelope.ts';
import { StoreInUseError } from '../src/errors.ts';
import { CoherenceError, openLog, type Identity, type Log, type NewAction } from '../src/index.ts';
import { appendOk, encrypted, filesContaining, newMasterKey, patchOf, rejection, runChild, scanFiles, spawnChild, storeEntries, storeSnapshot } from './support/crypto-fixtures.ts';
import { action, allEvents, tempDir } from './support/temp-log.ts';

const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

interface KeyBytes {
  key: Identity;
  record: string;
  wrapped: string;
  raw: string;
}

/** The stored bytes of keys, read and unwrapped by a child process with its own LMDB handle. */
async function keyBytes(path: string, masterKey: string, keys: Identity[]): Promise<{ record: Buffer; wrapped: Buffer; raw: Buffer }[]> {
  const found = await runChild<KeyBytes[]>('crypto-key-record.ts', [path, masterKey, JSON.stringify(keys)]);
  return found.map((k) => ({ record: Buffer.from(k.record, 'hex'), wrapped: Buffer.from(k.wrapped, 'hex'), raw: Buffer.from(k.raw, 'hex') }));
}

/** A digest of everything a reader can see: every event (decrypted), every key, the head. */
async function digest(log: Log): Promise<string> {
  const hash = createHash('sha256');
  for await (const event of log.read({ replay: false })) hash.update(JSON.stringify(event));
  for await (const info of log.keys.list()) hash.update(JSON.stringify(info));
  hash.update(String(await log.head()));
  return hash.digest('hex');
}

/** A store of `batches` x 1000 events of ~4 KB, every tenth with an encrypted value. */
async function bigStore(path: string, masterKey: string, batches: number): Promise<void> {
  const log = await openLog({ path, masterKey });
  try {
    const filler = 'f'.repeat(4000);
    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: 1000 }, (_, i): NewAction => {
        const n = b * 1000 + i;
        const event = action(['customer', n], [{ op: 'add', path: '/notes', value: `${filler}${n}` }, { op: 'add', path: '/email', value: `c${n}@example.com` }]);
        return n % 10 === 0 ? { ...event, encrypt: { key: ['user', n % 100], paths: ['/email'] } } : event;
      });
      await appendOk(log, events);
    }
    await log.keys.shred(['user', 0]);
  } finally {
    await log.close();
  }
}

/**
 * Starts a child compacting `path` and SIGKILLs it as soon as its temporary copy appears in the
 * store directory (`delayMs` undefined), or `delayMs` after it says it starts.
 */
async function killCompaction(path: string, delayMs?: number): Promise<{ signal: number | string; during: boolean }> {
  const child = spawnChild('crypto-compact.ts', [path]);
  let during = false;
  const watcher = watch(path, (_event, name) => {
    if (delayMs === undefined && name !== null && String(name).startsWith('compact-')) {
      during = true;
      child.process.kill('SIGKILL');
    }
  });
  try {
    await child.line('compacting');
    if (delayMs !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.process.kill('SIGKILL');
    }
    const signal = await child.exited;
    return { signal, during };
  } finally {
    watcher.close();
  }
}

describe('shred and compact on disk', () => {
  it('leaves neither the wrapped nor the raw bytes of a shredded key in any file after compact, though the scan finds them before', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    const destroyed: Buffer[] = [];
    try {
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
      await appendOk(log, [action(alice, [{ op: 'add', path: '/name', value: 'Alice' }])]);
      expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');

      const [aliceBytes, bobBytes] = (await keyBytes(path, masterKey, [aliceKey, bobKey])) as [{ record: Buffer; wrapped: Buffer; raw: Buffer }, { wrapped: Buffer }];
      // The raw key is the right one: it opens the stored envelope.
      let envelope: { data: string } | undefined;
      for await (const event of log.read({ raw: true })) envelope ??= patchOf(event)[0]?.value as { data: string };
      expect(openValue(Buffer.from(envelope?.data ?? '', 'base64'), aliceBytes.raw, aliceKey, alice, '/email', 1)).toBe('alice@example.com');

      // The scan is real: it finds the wrapped key (the raw key is never stored at all).
      expect(filesContaining(path, aliceBytes.record)).not.toEqual([]);
      expect(filesContaining(path, aliceBytes.wrapped)).not.toEqual([]);
      expect(filesContaining(path, aliceBytes.raw)).toEqual([]);

      await log.keys.shred(aliceKey);
      expect(await log.verify()).toEqual({ ok: true, events: 4 });
      await log.compact();
      expect(await log.verify()).toEqual({ ok: true, events: 4 });

      destroyed.push(aliceBytes.record, aliceBytes.wrapped, aliceBytes.wrapped.subarray(24), aliceBytes.raw);
      for (const needle of destroyed) expect(filesContaining(path, needle)).toEqual([]);
      // The live key is still there, so the scan still sees what it should.
      expect(filesContaining(path, bobBytes.wrapped)).not.toEqual([]);
      expect((await allEvents(log)).map((e) => ('action' in e ? patchOf(e)[0]?.value : e.effect.reason))).toEqual([null, 'bob@example.com', 'Alice', 'shredded']);
      expect(storeEntries(path)).toEqual(['data.mdb', 'lock.mdb']);
    } finally {
      await log.close();
    }
    // Closing writes nothing back either.
    for (const needle of destroyed) expect(filesContaining(path, needle)).toEqual([]);
  });

  it('leaves no wrapped bytes of any shredded key after compact, among many keys shredded one by one', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    try {
      const keys: Identity[] = Array.from({ length: 300 }, (_, i) => ['user', `subject-${i}`]);
      await appendOk(log, keys.map((key, i) => encrypted(['customer', i], key, `subject-${i}@example.com`)));
      const bytes = await keyBytes(path, masterKey, keys);
      const shredded = new Set(keys.map((_, i) => i).filter((i) => i % 3 === 0 || i % 7 === 0));
      const before = scanFiles(path);
      expect(bytes.filter(({ wrapped }) => before(wrapped).length === 0)).toEqual([]);
      for (const i of shredded) await log.keys.shred(keys[i] as Identity);
      await log.compact();

      const after = scanFiles(path);
      const left = bytes.filter(({ wrapped, raw }, i) => shredded.has(i) && after(wrapped).length + after(raw).length > 0);
      expect(left.length).toBe(0);
      // The scan is real: every live key is found.
      const lost = bytes.filter(({ wrapped }, i) => !shredded.has(i) && after(wrapped).length === 0);
      expect(lost.length).toBe(0);
      expect(await log.verify()).toEqual({ ok: true, events: 300 + shredded.size });
      const values = (await allEvents(log)).slice(0, 300).map((e) => patchOf(e)[0]?.value);
      expect(values).toEqual(keys.map((_, i) => (shredded.has(i) ? null : `subject-${i}@example.com`)));
    } finally {
      await log.close();
    }
  });
});

describe('compact', () => {
  it('refuses with StoreInUseError while another process has the store open, and compacts once it has exited', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    try {
      await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com')]);
      await log.keys.shred(aliceKey);
      const child = spawnChild('crypto-hold.ts', [path]);
      await child.line('open');
      const before = await storeSnapshot(log);

      const error = await rejection(log.compact());
      expect(error).toBeInstanceOf(StoreInUseError);
      expect(error).toBeInstanceOf(CoherenceError);
      expect(error).toMatchObject({ code: 'STORE_IN_USE' });
      expect((error as Error).message).toContain(String(child.process.pid));
      // Refused means untouched, and the log carries on.
      expect(await storeSnapshot(log)).toEqual(before);
      expect(storeEntries(path)).toEqual(['data.mdb', 'lock.mdb']);
      await appendOk(log, [encrypted(bob, bobKey, 'bob@example.com')]);

      child.process.stdin.end();
      expect(await child.exited).toBe(0);
      await log.compact();
      expect(await log.verify()).toEqual({ ok: true, events: 3 });
      expect(patchOf(await log.get(3))[0]?.value).toBe('bob@example.com');
    } finally {
      await log.close();
    }
  });

  it('exports StoreInUseError from the package entry, so callers can catch it by class', async () => {
    const entry: Record<string, unknown> = await import('../src/index.ts');
    expect(entry.StoreInUseError).toBe(StoreInUseError);
  });

  it('leaves the old store intact when a compaction is killed in the middle', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    await bigStore(path, masterKey, 5);
    const check = await openLog({ path, masterKey });
    const expected = await digest(check);
    await check.close();

    // The first kill lands while the copy is being written; the others at random moments.
    const delays = [undefined, ...Array.from({ length: 3 }, () => Math.floor(Math.random() * 600))];
    const outcomes = [];
    for (const delayMs of delays) {
      const { signal, during } = await killCompaction(path, delayMs);
      outcomes.push({ delayMs, signal, during });
      const log = await openLog({ path, masterKey });
      try {
        expect(await log.verify(), JSON.stringify(outcomes)).toEqual({ ok: true, events: 5001 });
        expect(await digest(log), JSON.stringify(outcomes)).toBe(expected);
        expect(patchOf(await log.get(11))).toEqual([
          { op: 'add', path: '/notes', value: `${'f'.repeat(4000)}10` },
          { op: 'add', path: '/email', value: 'c10@example.com' },
        ]);
        expect(patchOf(await log.get(1))[1]?.value).toBeNull();
      } finally {
        await log.close();
      }
    }
    expect(outcomes[0]).toMatchObject({ signal: 'SIGKILL', during: true });
  });

  it('removes the copy a killed compaction left behind at the next compaction', async () => {
    const path = tempDir();
    const masterKey = newMasterKey();
    await bigStore(path, masterKey, 3);
    const { during } = await killCompaction(path);
    expect(during).toBe(true);
    expect(storeEntries(path).some((name) => name.startsWith('compact-'))).toBe(true);

    const log = await openLog({ path, masterKey });
    try {
      const [key] = await keyBytes(path, masterKey, [['user', 10]]);
      await log.keys.shred(['user', 10]);
      await log.compact();
      expect(storeEntries(path)).toEqual(['data.mdb', 'lock.mdb']);
      expect(filesContaining(path, key?.wrapped as Buffer)).toEqual([]);
      expect(await log.verify()).toEqual({ ok: true, events: 3002 });
    } finally {
      await log.close();
    }
  });
});
