import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, openLog, StorageError, UnsupportedFormatError, type Identity } from '../../src/index.ts';
import type { EventRow, Storage } from '../../src/storage/engine.ts';
import { postgresEngine } from '../../src/storage/postgres/index.ts';
import { storageEngineOf } from '../../src/storage/registry.ts';
import { appendOk, newMasterKey, rejection } from '../support/crypto-fixtures.ts';
import { engineOn, freshSchema, POSTGRES_URL, postgresLog, reportSkipped, sql } from '../support/postgres.ts';
import { action } from '../support/temp-log.ts';

const book = (id: Identity[1]): Identity => ['book', id];

describe('postgresEngine options', () => {
  it('refuses bad options with an InvalidArgumentError, before any connection', () => {
    const bad: unknown[] = [
      undefined,
      {},
      { connectionString: '' },
      { connectionString: 'postgresql://x/y', pool: { connect: async () => ({}) } },
      { pool: {} },
      { pool: { connect: async () => ({}) }, poolSize: 3 },
      { connectionString: 'postgresql://x/y', poolSize: 1 },
      { connectionString: 'postgresql://x/y', schema: 'has space' },
      { connectionString: 'postgresql://x/y', schema: 'pg_catalog' },
      { connectionString: 'postgresql://x/y', schema: '1abc' },
      { connectionString: 'postgresql://x/y', schema: 'a'.repeat(64) },
      { connectionString: 'postgresql://x/y', schema: 'x"; DROP TABLE t; --' },
      { connectionString: 'postgresql://x/y', host: 'x' },
    ];
    for (const options of bad) expect(() => postgresEngine(options as never), JSON.stringify(options)).toThrow(InvalidArgumentError);
    expect(postgresEngine({ connectionString: 'postgresql://x/y', schema: 'Shop_1' }).kind).toBe('postgres');
  });

  it('reports a database it cannot reach as a StorageError from openLog, naming no password', async () => {
    const error = await rejection(openLog({ engine: postgresEngine({ connectionString: 'postgresql://me:secret@127.0.0.1:1/none' }) }));
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).not.toContain('secret');
  });
});

describe.skipIf(POSTGRES_URL === undefined)('postgresEngine on a server', () => {
  it('creates its schema at the first open and refuses one written by a newer version', async () => {
    const schema = freshSchema();
    const log = await postgresLog({}, schema);
    await appendOk(log, [action(book(1), [{ op: 'add', path: '/a', value: 1 }])]);
    await log.close();
    expect(await sql(`SELECT max(version) AS version FROM "${schema}".migrations`)).toEqual([{ version: 1 }]);
    await sql(`INSERT INTO "${schema}".migrations (version) VALUES (2)`);
    expect(await rejection(openLog({ engine: engineOn(schema) }))).toBeInstanceOf(UnsupportedFormatError);
  });

  it('lets many processes open a new schema at once without racing on its creation', async () => {
    const schema = freshSchema();
    const logs = await Promise.all(Array.from({ length: 6 }, () => openLog({ engine: engineOn(schema) })));
    try {
      await Promise.all(logs.map((log, i) => log.append([action(book(i), [{ op: 'add', path: '/a', value: i }])], { base: 0 })));
      expect(await logs[0]?.head()).toBe(6);
      expect(await logs[0]?.verify()).toEqual({ ok: true, events: 6 });
    } finally {
      await Promise.all(logs.map((log) => log.close()));
    }
  });

  it('groups concurrent appends into few transactions, each decide seeing the writes before it', async () => {
    const schema = freshSchema();
    const log = await postgresLog({}, schema);
    const disjoint = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append([action(book(i), [{ op: 'add', path: '/a', value: i }])], { base: 0 })));
    expect(disjoint.map((r) => r.status)).toEqual(Array(100).fill('ok'));
    // Rows inserted by one transaction share its xmin.
    const [{ transactions }] = (await sql(`SELECT count(DISTINCT xmin::text)::int AS transactions FROM "${schema}".events`)) as [{ transactions: number }];
    expect(transactions).toBeLessThanOrEqual(3);
    // The same base and aggregate 50 times at once: the first wins, each later decide sees it.
    const head = await log.head();
    const racing = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append([action(book('hot'), [{ op: 'add', path: '/n', value: i }])], { base: head })));
    expect(racing.filter((r) => r.status === 'ok')).toHaveLength(1);
    expect(racing.filter((r) => r.status === 'conflict')).toHaveLength(49);
    expect(await log.head()).toBe(head + 1);
    expect(await log.verify()).toEqual({ ok: true, events: head + 1 });
  });

  it('checks a write decided on its own last head against another writer that got in between', async () => {
    const schema = freshSchema();
    const first = await postgresLog({}, schema);
    const second = await postgresLog({}, schema);
    const edit = (value: number) => action(book('shared'), [{ op: 'replace', path: '/v', value }]);
    const [mine] = await appendOk(first, [action(book('shared'), [{ op: 'add', path: '/v', value: 0 }])]);
    // The first writer now knows the head; the second appends behind its back.
    const [theirs] = await appendOk(second, [edit(1)]);
    const result = await first.append([edit(2)], { base: mine?.seq as number });
    expect(result).toMatchObject({ status: 'conflict', conflicts: [{ ours: { seq: 3 }, theirs: { seq: theirs?.seq } }] });
    // A write with nothing to conflict with goes through, after the head it did not know.
    expect(await first.append([action(book('other'), [{ op: 'add', path: '/v', value: 1 }])], { base: mine?.seq as number })).toMatchObject({ status: 'ok', events: [{ seq: 3 }] });
    expect(await first.append([edit(3)], { base: 3 })).toMatchObject({ status: 'ok', events: [{ seq: 4 }] });
    expect(await second.append([edit(4)], { base: 5 })).toEqual({ status: 'invalid-base', head: 4 });
    expect(await first.verify()).toEqual({ ok: true, events: 4 });
  });

  it('takes a keyed batch once, from any connection, even when the repeats are in flight together', async () => {
    const schema = freshSchema();
    const first = await postgresLog({}, schema);
    const second = await postgresLog({}, schema);
    const batch = [action(book(1), [{ op: 'add', path: '/a', value: 1 }]), action(book(2), [{ op: 'add', path: '/a', value: 2 }])];
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () => first.append(batch, { base: 0, idempotencyKey: 'order-17' })),
      ...Array.from({ length: 5 }, () => second.append(batch, { base: 0, idempotencyKey: 'order-17' })),
    ]);
    const ok = results.filter((r) => r.status === 'ok');
    expect(ok).toHaveLength(1);
    for (const result of results) if (result.status !== 'ok') expect(result).toEqual({ status: 'duplicate', events: (ok[0] as { events: unknown }).events });
    // Checked before the conflict check: a retry based on 0 after others wrote is still a duplicate.
    await appendOk(second, [action(book(1), [{ op: 'add', path: '/b', value: 3 }])]);
    expect(await first.append(batch, { base: 0, idempotencyKey: 'order-17' })).toMatchObject({ status: 'duplicate' });
    expect(await first.append(batch, { base: 0, idempotencyKey: 'order-18' })).toMatchObject({ status: 'conflict' });
    expect(await first.head()).toBe(3);
  });

  it('rejects only the write whose decide throws, and writes the others of its transaction', async () => {
    const log = await postgresLog({ masterKey: newMasterKey() });
    const key: Identity = ['user', 'alice'];
    const writes = [
      log.keys.create(key),
      ...Array.from({ length: 5 }, (_, i) => log.append([action(book(i), [{ op: 'add', path: '/a', value: i }])], { base: 0 })),
      log.keys.create(key),
      log.append([action(book('x'), [{ op: 'add', path: '/a', value: 1 }])], { base: 0 }),
    ];
    const settled = await Promise.allSettled(writes);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[6] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidArgumentError);
    expect(await log.head()).toBe(6);
    expect(await log.keys.get(key)).toMatchObject({ key });
  });

  it('takes connections from a pool it is given and leaves the pool open when it closes', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
    try {
      const log = await openLog({ engine: postgresEngine({ pool, schema: freshSchema() }) });
      await appendOk(log, [action(book(1), [{ op: 'add', path: '/a', value: 1 }])]);
      const stop = log.projection('p').follow();
      await stop();
      await log.close();
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('hears appends of another machine through LISTEN/NOTIFY, and again once its listening connection was dropped', async () => {
    const schema = freshSchema();
    const reader = await postgresLog({}, schema);
    const writer = await postgresLog({}, schema);
    const seen: number[] = [];
    const projection = reader.projection('books');
    const stop = projection.follow({ onCatchUp: (result) => seen.push(result.to) });
    const until = async (seq: number) => {
      for (let i = 0; i < 200 && !seen.includes(seq); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(seen).toContain(seq);
    };
    try {
      await appendOk(writer, [action(book(1), [{ op: 'add', path: '/a', value: 1 }])]);
      await until(1);
      const listeners = await sql(`SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE query LIKE 'LISTEN "coherence_%' AND state = 'idle' AND pid <> pg_backend_pid()`);
      expect(listeners.length).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await appendOk(writer, [action(book(2), [{ op: 'add', path: '/a', value: 2 }])]);
      await until(2);
      expect(await projection.get(book(2))).toEqual({ a: 2 });
    } finally {
      await stop();
    }
  });

  it('overwrites the key row of a shred in place and rewrites the key and projection tables on compact', async () => {
    const schema = freshSchema();
    const log = await postgresLog({ masterKey: newMasterKey() }, schema);
    const key: Identity = ['user', 'alice'];
    await appendOk(log, [{ ...action(book(1), [{ op: 'add', path: '/email', value: 'alice@example.com' }]), encrypt: { key } }]);
    await log.projection('p').catchUp();
    const keyRow = async () => (await sql(`SELECT record FROM "${schema}".keys`)) as { record: Buffer }[];
    const before = await keyRow();
    await log.keys.shred(key);
    const after = await keyRow();
    expect(after).toHaveLength(1);
    expect(after[0]?.record.equals(before[0]?.record as Buffer)).toBe(false);
    await log.projection('p').catchUp();
    expect(await log.projection('p').get(book(1))).toEqual({ email: null });
    const files = async () => sql(`SELECT relname, relfilenode::text AS file FROM pg_class WHERE relnamespace = $1::regnamespace AND relname IN ('keys', 'states', 'consumers', 'snapshots') ORDER BY relname`, [schema]);
    const old = await files();
    const progress: [number, number][] = [];
    await log.compact({ onProgress: (done, total) => progress.push([done, total]) });
    const rewritten = await files();
    expect(rewritten.map((r) => r.relname)).toEqual(['consumers', 'keys', 'snapshots', 'states']);
    rewritten.forEach((r, i) => expect(r.file, String(r.relname)).not.toBe(old[i]?.file));
    expect(progress.at(-1)).toEqual([4, 4]);
    // Appends queued around a compact wait for it and then go through.
    const appends = Array.from({ length: 200 }, (_, i) => log.append([action(book(i + 10), [{ op: 'add', path: '/a', value: i }])], { base: 2 }));
    await log.compact();
    expect((await Promise.all(appends)).every((r) => r.status === 'ok')).toBe(true);
    expect(await log.verify()).toEqual({ ok: true, events: 202 });
  });

  it('keeps the latest snapshot of an aggregate until an effect on it, and refuses one older than an effect', async () => {
    // snapshot() and putSnapshot() as issue 9's contract adds them to Storage.
    const storage = (await storageEngineOf(engineOn(freshSchema())).open()) as Storage & {
      snapshot(aggregate: Identity, upTo: number): Promise<{ seq: number; value: Uint8Array } | undefined>;
      putSnapshot(aggregate: Identity, seq: number, value: Uint8Array): Promise<boolean>;
    };
    try {
      const aggregate = book(1);
      const write = (rows: EventRow[]) => storage.write({ base: 0, aggregates: [], conflictRecords: false, triggers: [], keys: [] }, () => ({ result: undefined, events: rows }));
      const record = (seq: number) => Buffer.from(`record ${seq}`);
      await write([1, 2].map((seq) => ({ type: 'action', seq, record: record(seq), aggregate, triggers: [['consent', 'c']] })));
      expect(await storage.putSnapshot(aggregate, 2, Buffer.from('at 2'))).toBe(true);
      expect(await storage.putSnapshot(aggregate, 1, Buffer.from('at 1'))).toBe(false);
      expect(await storage.snapshot(aggregate, 1)).toBeUndefined();
      expect(await storage.snapshot(aggregate, 5)).toEqual({ seq: 2, value: Buffer.from('at 2') });
      await write([{ type: 'effect', seq: 3, record: record(3), trigger: ['consent', 'c'], affected: [aggregate] }]);
      expect(await storage.snapshot(aggregate, 5)).toBeUndefined();
      expect(await storage.putSnapshot(aggregate, 2, Buffer.from('at 2 again'))).toBe(false);
      expect(await storage.putSnapshot(aggregate, 3, Buffer.from('at 3'))).toBe(true);
      expect(await storage.snapshot(aggregate, 3)).toEqual({ seq: 3, value: Buffer.from('at 3') });
    } finally {
      await storage.close();
    }
  });

  it('counts aggregates and bytes for stats', async () => {
    const log = await postgresLog();
    await appendOk(log, [1, 2, 2, 3, 'x', 'x'].map((id) => action(book(id), [{ op: 'add', path: '/a', value: 1 }])));
    const stats = await log.stats();
    expect(stats).toMatchObject({ events: 6, aggregates: 4 });
  });

  it('keeps the contract order for keys, states and projection names (numbers before strings, UTF-8 bytes)', async () => {
    const log = await postgresLog({ masterKey: newMasterKey() });
    const ids: Identity[1][] = ['é', 'b', 'a', 10, -3, 2, 'Z', '\u{1F600}', '\uFFFD'];
    for (const id of ids) await log.keys.create(['k', id]);
    await log.keys.create(['j', 1]);
    const listed = [];
    for await (const info of log.keys.list()) listed.push(info.key);
    const expected = [['j', 1], ...[-3, 2, 10, 'Z', 'a', 'b', 'é', '\uFFFD', '\u{1F600}'].map((id) => ['k', id])];
    expect(listed).toEqual(expected);
    await appendOk(log, ids.map((id) => action(['k', id], [{ op: 'add', path: '/a', value: 1 }])));
    const projection = log.projection('p');
    await projection.catchUp();
    const states = [];
    for await (const [aggregate] of projection.entries({ kind: 'k' })) states.push(aggregate);
    expect(states).toEqual(expected.slice(1));
  });

  it('finds index tables that disagree with the events, naming the seq', async () => {
    const schema = freshSchema();
    const log = await postgresLog({}, schema);
    await appendOk(log, [
      action(book(1), [{ op: 'add', path: '/a', value: 1 }], { triggers: [['consent', 'c']] }),
      action(book(2), [{ op: 'add', path: '/a', value: 1 }], { triggers: [['consent', 'c']] }),
      { source: 'test', effect: { reason: 'revoked', trigger: ['consent', 'c'] } },
      action(book(3), [{ op: 'add', path: '/a', value: 1 }]),
    ]);
    expect(await log.verify()).toEqual({ ok: true, events: 4 });
    const s = `"${schema}"`;
    const rows = async (text: string) => sql(text);
    const [seq4] = await rows(`SELECT aggregate FROM ${s}.events WHERE seq = 4`);
    const [seq1] = await rows(`SELECT aggregate FROM ${s}.events WHERE seq = 1`);
    const [link2] = await rows(`SELECT trigger, aggregate FROM ${s}.triggers WHERE seq = 2`);
    const [effect3] = await rows(`SELECT affected FROM ${s}.effects WHERE seq = 3`);
    const tamper = async (change: [string, unknown[]], undo: [string, unknown[]], seq: number, reason: RegExp) => {
      await sql(...change);
      expect(await log.verify(), change[0]).toMatchObject({ ok: false, seq, reason: expect.stringMatching(reason) });
      await sql(...undo);
      expect(await log.verify(), undo[0]).toEqual({ ok: true, events: 4 });
    };
    await tamper([`UPDATE ${s}.events SET aggregate = $1 WHERE seq = 4`, [seq1?.aggregate]], [`UPDATE ${s}.events SET aggregate = $1 WHERE seq = 4`, [seq4?.aggregate]], 4, /aggregate index/);
    await tamper([`UPDATE ${s}.events SET aggregate = $1 WHERE seq = 3`, [seq1?.aggregate]], [`UPDATE ${s}.events SET aggregate = NULL WHERE seq = 3`, []], 3, /aggregate index/);
    await tamper([`DELETE FROM ${s}.triggers WHERE seq = 2`, []], [`INSERT INTO ${s}.triggers VALUES ($1, 2, $2)`, [link2?.trigger, link2?.aggregate]], 2, /trigger index/);
    await tamper([`INSERT INTO ${s}.triggers VALUES ($1, 4, $2)`, [link2?.trigger, seq4?.aggregate]], [`DELETE FROM ${s}.triggers WHERE seq = 4`, []], 4, /trigger index has an entry/);
    await tamper([`UPDATE ${s}.effects SET affected = (SELECT affected FROM ${s}.effects WHERE seq = 3) || '\\x00'::bytea WHERE seq = 3`, []], [`UPDATE ${s}.effects SET affected = $1 WHERE seq = 3`, [effect3?.affected]], 3, /affected aggregates/);
    await tamper([`DELETE FROM ${s}.effects_by_aggregate WHERE seq = 3 AND aggregate = $1`, [seq1?.aggregate]], [`INSERT INTO ${s}.effects_by_aggregate VALUES ($1, 3)`, [seq1?.aggregate]], 3, /effect index/);
    await tamper([`INSERT INTO ${s}.effects_by_aggregate VALUES ($1, 3)`, [seq4?.aggregate]], [`DELETE FROM ${s}.effects_by_aggregate WHERE seq = 3 AND aggregate = $1`, [seq4?.aggregate]], 3, /effect index has an entry/);
    await tamper([`INSERT INTO ${s}.effects_by_aggregate VALUES ($1, 99)`, [seq4?.aggregate]], [`DELETE FROM ${s}.effects_by_aggregate WHERE seq = 99`, []], 99, /effect index has an entry/);
    await tamper([`INSERT INTO ${s}.effects VALUES (4, $1)`, [effect3?.affected]], [`DELETE FROM ${s}.effects WHERE seq = 4`, []], 4, /effects table has an entry/);
  });
});

reportSkipped('COHERENCE_TEST_POSTGRES_URL', 'the PostgreSQL engine on a server');
