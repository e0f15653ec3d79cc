/**
 * A store written by 0.1.0 opens and upgrades (SPEC §2, §12), and schema evolution: actions
 * record their kind's version; readers see them lifted by the upcasters; raw reads and verify see
 * what was stored; an action newer than the reader's schema is refused, never misread.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, openLog, UnsupportedFormatError, UpcastError, type Action, type ActionEvent, type Identity, type Log, type LogEvent, type NewEffect } from '../src/index.ts';
import { action, allEvents, tempDir } from './support/temp-log.ts';

const FIXTURE = new URL('./fixtures/store-0.1.0/data.mdb', import.meta.url).pathname;
const FIXTURE_KEY = 'ab'.repeat(32);
const FORMAT_2_FIXTURE = new URL('./fixtures/store-format-2/data.mdb', import.meta.url).pathname;
const FORMAT_2_KEY = 'cd'.repeat(32);
const packr = new Packr({ useRecords: false });

function oldStore(fixture = FIXTURE): string {
  const path = join(tempDir(), 'store');
  mkdirSync(path);
  copyFileSync(fixture, join(path, 'data.mdb'));
  return path;
}

async function formatOf(path: string): Promise<unknown> {
  const root = open({ path, maxDbs: 16 });
  const value = root.openDB({ name: 'meta', encoding: 'binary' }).get('format');
  await root.close();
  return packr.unpack(value as Buffer);
}

/** How many entries the per-action trigger index of formats 1 and 2 and the trigger links of format 3 hold. */
async function triggerIndexSizes(path: string): Promise<{ byTrigger: number; links: number }> {
  const root = open({ path, maxDbs: 16 });
  const sizes = { byTrigger: root.openDB({ name: 'by-trigger', encoding: 'binary' }).getCount(), links: root.openDB({ name: 'trigger-links', encoding: 'binary' }).getCount() };
  await root.close();
  return sizes;
}

const actionsOf = (events: LogEvent[]) => events.filter((e): e is ActionEvent => 'action' in e);

describe('a store written by 0.1.0', () => {
  it('opens with every event, state, key and projection as it was, verifies, and is upgraded to format 3', async () => {
    const path = oldStore();
    expect(await formatOf(path)).toBe(1);
    expect(await triggerIndexSizes(path)).toEqual({ byTrigger: 2, links: 0 });
    const log = await openLog({ path, masterKey: FIXTURE_KEY, redact: () => '[erased]' });
    expect(await log.head()).toBe(5);
    expect((await log.state(['book', 'Neuromancer'])).state).toEqual({ title: 'Neuromancer', stock: 2 });
    expect((await log.state(['receipt', 1])).state).toEqual({ card: '4111 1111 1111 1111', total: 42 });
    expect((await log.state(['receipt', 2])).state).toEqual({ card: '[erased]', total: 7 });
    expect(await log.projection('receipts', { kinds: ['receipt'] }).get(['receipt', 1])).toEqual({ card: '4111 1111 1111 1111', total: 42 });
    expect((await log.keys.get(['customer', 'bob']))?.reason).toBe('shredded');
    expect(await log.verify()).toEqual({ ok: true, events: 5 });
    // It takes new writes, with the features of format 2.
    expect((await log.append([action(['book', 'Neuromancer'], [{ op: 'replace', path: '/stock', value: 5 }])], { base: 5, idempotencyKey: 'restock-1' })).status).toBe('ok');
    expect(await log.verify()).toEqual({ ok: true, events: 6 });
    await log.close();
    expect(await formatOf(path)).toBe(3);
    expect(await triggerIndexSizes(path)).toEqual({ byTrigger: 0, links: 2 });
  });

  it('gives its actions schema version 1: readers with a schema see them lifted from 1', async () => {
    const path = oldStore();
    const log = await openLog({
      path,
      masterKey: FIXTURE_KEY,
      schemas: { book: { version: 2, upcasters: [(a: Action) => ({ ...a, patch: a.patch.map((op) => (op.path === '/stock' ? { ...op, path: '/copies' } : op)) })] } },
    });
    expect((await log.state(['book', 'Neuromancer'])).state).toEqual({ title: 'Neuromancer', copies: 2 });
    await log.close();
  });
});

describe('a store of format 2 (written before 0.2.0 linked triggers once)', () => {
  const longTrigger: Identity = ['t'.repeat(512), 'i'.repeat(512)];
  const longAggregate: Identity = ['k'.repeat(512), 'a'.repeat(512)];
  const shred = (trigger: Identity): NewEffect => ({ source: 'test', effect: { reason: 'shredded', trigger } });
  const affectedBy = async (log: Log, seq: number, aggregates: Identity[]) =>
    (await Promise.all(aggregates.map(async (aggregate) => ((await log.conflicts(seq - 1, aggregate)).some((e) => e.seq === seq) ? [aggregate] : [])))).flat();

  it('links each trigger to each aggregate once, so effects after the upgrade affect what was linked before it, and verifies', async () => {
    const path = oldStore(FORMAT_2_FIXTURE);
    expect(await formatOf(path)).toBe(2);
    // Eight actions' links, two of them repeats of a link made earlier.
    expect(await triggerIndexSizes(path)).toEqual({ byTrigger: 8, links: 0 });
    const log = await openLog({ path, masterKey: FORMAT_2_KEY, redact: () => '[erased]' });
    expect(await log.head()).toBe(8);
    expect(await log.verify()).toEqual({ ok: true, events: 8 });
    expect((await log.state(['receipt', 7])).state).toEqual({ card: '4111 1111 1111 1111', total: 42 });

    const books: Identity[] = [['book', 'Neuromancer'], ['book', 'Idoru'], ['book', 'Count Zero'], ['receipt', 7], longAggregate];
    await log.append([shred(['consent', 'alice'])], { base: 8 });
    expect(await affectedBy(log, 9, books)).toEqual([['book', 'Neuromancer'], ['book', 'Idoru']]);
    await log.append([shred(longTrigger)], { base: 9 });
    expect(await affectedBy(log, 10, books)).toEqual([['book', 'Count Zero'], longAggregate]);
    await log.keys.shred(['customer', 'carol']);
    expect((await log.state(['receipt', 7])).state).toEqual({ card: '[erased]', total: '[erased]' });
    // A link made after the upgrade, to a trigger linked before it.
    await log.append([action(['book', 'Count Zero'], [{ op: 'add', path: '/m', value: 1 }], { triggers: [['consent', 'bob']] })], { base: 11 });
    await log.append([shred(['consent', 'bob'])], { base: 12 });
    expect(await affectedBy(log, 13, books)).toEqual([['book', 'Idoru'], ['book', 'Count Zero']]);
    expect(await log.verify()).toEqual({ ok: true, events: 13 });
    await log.close();

    expect(await formatOf(path)).toBe(3);
    expect(await triggerIndexSizes(path)).toEqual({ byTrigger: 0, links: 7 });
  });
});

const v1Book = (title: string, price: number) => action(['book', title], [{ op: 'add', path: '/title', value: title }, { op: 'add', path: '/price', value: price }]);

/** v1 -> v2: the price (a number) moves to /price/amount with a currency; v2 -> v3: /title becomes /name. */
const upcasters = [
  (a: Action): Action => ({ ...a, patch: a.patch.map((op) => (op.path === '/price' && 'value' in op ? { ...op, value: { amount: op.value, currency: 'EUR' } } : op)) }),
  (a: Action): Action => ({ ...a, patch: a.patch.map((op) => (op.path === '/title' ? { ...op, path: '/name' } : op)) }),
];

describe('schema versions and upcasters', () => {
  it('lifts v1 actions to v3 for every reader, shows raw reads as stored, and verifies', async () => {
    const path = tempDir();
    const v1 = await openLog({ path });
    await v1.append([v1Book('Neuromancer', 10), v1Book('Idoru', 12)], { base: 0 });
    await v1.close();

    const v3 = await openLog({ path, schemas: { book: { version: 3, upcasters } } });
    // A v3 writer appends in the v3 shape; it is stored as version 3 and not lifted again.
    await v3.append([action(['book', 'Count Zero'], [{ op: 'add', path: '/name', value: 'Count Zero' }, { op: 'add', path: '/price', value: { amount: 9, currency: 'GBP' } }])], { base: 2 });
    const lifted = { name: 'Neuromancer', price: { amount: 10, currency: 'EUR' } };
    expect((await v3.state(['book', 'Neuromancer'])).state).toEqual(lifted);
    expect((await v3.state(['book', 'Count Zero'])).state).toEqual({ name: 'Count Zero', price: { amount: 9, currency: 'GBP' } });
    const read = actionsOf(await allEvents(v3));
    expect(read[0]?.action.patch).toEqual([{ op: 'add', path: '/name', value: 'Neuromancer' }, { op: 'add', path: '/price', value: { amount: 10, currency: 'EUR' } }]);
    expect(actionsOf([(await v3.get(2)) as LogEvent])[0]?.action.patch[0]).toEqual({ op: 'add', path: '/name', value: 'Idoru' });
    expect(actionsOf(await v3.conflicts(0, ['book', 'Neuromancer']))[0]?.action.patch[0]?.path).toBe('/name');
    const books = v3.projection('books');
    await books.catchUp();
    expect(await books.get(['book', 'Neuromancer'])).toEqual(lifted);
    // Raw reads and verify see what was stored.
    const raw = [];
    for await (const event of v3.read({ raw: true, replay: false })) raw.push(event);
    expect(actionsOf(raw)[0]?.action.patch).toEqual([{ op: 'add', path: '/title', value: 'Neuromancer' }, { op: 'add', path: '/price', value: 10 }]);
    expect(await v3.verify()).toEqual({ ok: true, events: 3 });
    await v3.close();

    // A reader whose schema is older than what is stored refuses it, never misreads it.
    const v2 = await openLog({ path, schemas: { book: { version: 2, upcasters: [upcasters[0] as (a: Action) => Action] } } });
    expect((await v2.state(['book', 'Idoru'])).state).toEqual({ title: 'Idoru', price: { amount: 12, currency: 'EUR' } });
    const error = await v2.state(['book', 'Count Zero']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect((error as Error).message).toMatch(/version 3 of kind "book", newer than this reader's 2/);
    await v2.close();
  });

  it('turns an upcaster that throws or moves the action to another aggregate into an UpcastError', async () => {
    const path = tempDir();
    const v1 = await openLog({ path });
    await v1.append([v1Book('Neuromancer', 10)], { base: 0 });
    await v1.close();
    const throwing = await openLog({ path, schemas: { book: { version: 2, upcasters: [() => { throw new Error('bad data'); }] } } });
    const thrown = await throwing.state(['book', 'Neuromancer']).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(UpcastError);
    expect(thrown).toMatchObject({ kind: 'book', seq: 1, code: 'UPCAST_FAILED' });
    expect((thrown as Error).cause).toBeInstanceOf(Error);
    await throwing.close();
    const moving = await openLog({ path, schemas: { book: { version: 2, upcasters: [(a: Action) => ({ ...a, aggregate: ['book', 'elsewhere'] })] } } });
    expect(await moving.state(['book', 'Neuromancer']).catch((e: unknown) => e)).toBeInstanceOf(UpcastError);
    await moving.close();
  });

  it('refuses schemas with the wrong number of upcasters, a bad version or non-functions, and opens nothing', async () => {
    const path = tempDir();
    for (const schemas of [
      { book: { version: 3, upcasters: [upcasters[0]] } },
      { book: { version: 0, upcasters: [] } },
      { book: { version: 2, upcasters: ['not a function'] } },
      { book: { version: 1 } },
      'schemas',
    ]) {
      const error = await openLog({ path, schemas: schemas as never }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/^options\.schemas/);
    }
  });
});
