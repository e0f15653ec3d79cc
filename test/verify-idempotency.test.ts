/**
 * verify() checks the idempotency records against the events (SPEC §3, §8): the first event of a
 * keyed batch names its key and length in the chain, and the key's record must say the same;
 * tampering with either side is found. And actions on `$` kinds are refused by append (SPEC §1).
 */
import { open } from 'lmdb';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../src/index.ts';
import { action, allEvents, tempLog, verifyClosed } from './support/temp-log.ts';

const packr = new Packr({ useRecords: false });

async function keyedStore(): Promise<string> {
  const { log, path } = await tempLog();
  await log.append([action(['book', 'a'], [{ op: 'add', path: '/t', value: 1 }])], { base: 0 });
  const batch = [action(['book', 'b'], [{ op: 'add', path: '/t', value: 2 }]), action(['book', 'c'], [{ op: 'add', path: '/t', value: 3 }])];
  expect((await log.append(batch, { base: 1, idempotencyKey: 'order-7' })).status).toBe('ok');
  expect((await log.append(batch, { base: 1, idempotencyKey: 'order-7' })).status).toBe('duplicate');
  expect(await log.verify()).toEqual({ ok: true, events: 3 });
  await log.close();
  return path;
}

async function tamper(path: string, change: (idempotency: ReturnType<ReturnType<typeof open>['openDB']>) => void): Promise<void> {
  const root = open({ path, maxDbs: 16 });
  const idempotency = root.openDB({ name: 'idempotency', encoding: 'binary' });
  await root.transaction(() => change(idempotency));
  await root.close();
}

describe('verify and idempotency records', () => {
  it('reports the first event of a keyed batch whose key record is missing', async () => {
    const path = await keyedStore();
    await tamper(path, (db) => db.removeSync('order-7'));
    expect(await verifyClosed(path)).toEqual({ ok: false, seq: 2, reason: 'the idempotency key of its batch is missing or wrong in the idempotency table' });
  });

  it('reports a key record that names other seqs than its batch', async () => {
    const path = await keyedStore();
    await tamper(path, (db) => db.putSync('order-7', packr.pack([2, 2])));
    expect(await verifyClosed(path)).toEqual({ ok: false, seq: 2, reason: 'the idempotency key of its batch is missing or wrong in the idempotency table' });
  });

  it('reports a key record no event names', async () => {
    const path = await keyedStore();
    await tamper(path, (db) => db.putSync('forged', packr.pack([1, 1])));
    expect(await verifyClosed(path)).toEqual({ ok: false, seq: 1, reason: 'the idempotency table has an entry no event accounts for' });
  });
});

describe('kinds that belong to coherence', () => {
  it('refuses an action on a kind starting with "$" and writes nothing', async () => {
    const { log } = await tempLog();
    const error = await log.append([action(['book', 1], [{ op: 'add', path: '/t', value: 1 }]), action(['$process', 'p'], [{ op: 'add', path: '/t', value: 1 }])], { base: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidEventError);
    expect(error).toMatchObject({ index: 1, path: 'action.aggregate[0]' });
    expect((error as Error).message).toMatch(/expected a kind that does not start with "\$"/);
    expect(await allEvents(log)).toEqual([]);
    // Other identities may use "$" freely: actors, triggers.
    expect((await log.append([action(['book', 1], [{ op: 'add', path: '/t', value: 1 }], { actor: ['$system', 'cron'], triggers: [['$consent', 1]] })], { base: 0 })).status).toBe('ok');
  });
});
