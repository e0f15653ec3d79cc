/**
 * A log on a streaming hot standby. The standby serves reads and refuses writes, and a
 * projection's states are written to the store that holds the log, so projections run against
 * the primary; a reader on the standby (read, state, get, verify) sees the primary's events once
 * replication has caught up, and what it folds equals the primary's projection.
 */
import { applyPatch, deepClone } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { StorageError, type Identity, type Log, type NewEvent } from '../../src/index.ts';
import { appendOk, newMasterKey, rejection } from '../support/crypto-fixtures.ts';
import { freshSchema, POSTGRES_URL, postgresLog, reportSkipped, sql, STANDBY_URL } from '../support/postgres.ts';
import { action, allEvents } from '../support/temp-log.ts';

/** Waits until the standby has replayed everything the primary has written so far. */
async function caughtUp(): Promise<void> {
  const [{ lsn }] = (await sql('SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
  for (let i = 0; i < 400; i++) {
    const [row] = await sql('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [lsn], STANDBY_URL);
    if (row?.done === true) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the standby did not catch up within 10 s');
}

/** Every aggregate's state folded from the log's events, read from 1 as they read now. */
async function foldAll(log: Log): Promise<Map<string, unknown>> {
  const states = new Map<string, unknown>();
  for (const event of await allEvents(log)) {
    if (!('action' in event)) continue;
    const key = JSON.stringify(event.action.aggregate);
    states.set(key, applyPatch(deepClone(states.get(key) ?? {}), event.action.patch).newDocument);
  }
  return states;
}

function workload(round: number): NewEvent[] {
  return Array.from({ length: 40 }, (_, i): NewEvent => {
    const customer: Identity = ['customer', `c${i % 7}`];
    const secret = i % 4 === 0;
    const path = secret ? `/secret${round}` : `/r${round}`;
    const base = action(customer, [{ op: 'add', path, value: i }], { triggers: [['consent', `k${i % 3}`]] });
    return secret ? { ...base, encrypt: { key: ['user', `c${i % 7}-r${round}`] } } : base;
  });
}

describe.skipIf(POSTGRES_URL === undefined || STANDBY_URL === undefined)('a log on a hot standby', () => {
  it('reads what the primary wrote, and folds it into what the primary projection holds', async () => {
    const schema = freshSchema();
    const masterKey = newMasterKey();
    const primary = await postgresLog({ masterKey }, schema);
    const projection = primary.projection('customers');
    await appendOk(primary, workload(1));
    await primary.append([{ source: 'test', effect: { reason: 'revoked', trigger: ['consent', 'k1'] } }], { base: 0 });
    await primary.keys.shred(['user', 'c0-r1']);
    await appendOk(primary, workload(2));
    await projection.catchUp();
    await caughtUp();

    const standby = await postgresLog({ masterKey }, schema, STANDBY_URL);
    expect(await standby.head()).toBe(await primary.head());
    expect(await standby.verify()).toEqual({ ok: true, events: await primary.head() });
    const expected = new Map<string, unknown>();
    for await (const [aggregate, state] of projection.entries()) expected.set(JSON.stringify(aggregate), state);
    const folded = await foldAll(standby);
    expect(folded).toEqual(expected);
    // The shredded key's values read redacted on the standby too.
    expect(folded.get(JSON.stringify(['customer', 'c0']))).toMatchObject({ secret1: null });
    for (const [key, state] of expected) expect((await standby.state(JSON.parse(key) as Identity)).state).toEqual(state);

    // Later appends reach it once replication catches up.
    await appendOk(primary, workload(3));
    await projection.catchUp();
    await caughtUp();
    const later = new Map<string, unknown>();
    for await (const [aggregate, state] of projection.entries()) later.set(JSON.stringify(aggregate), state);
    expect(await foldAll(standby)).toEqual(later);
    // The projection's states replicate too: read on the standby, they are the primary's.
    const replicated = new Map<string, unknown>();
    for await (const [aggregate, state] of standby.projection('customers').entries()) replicated.set(JSON.stringify(aggregate), state);
    expect(replicated).toEqual(later);

    // Writes are the primary's: the standby refuses them (a projection's commit too), and nothing is written.
    await appendOk(primary, workload(4));
    await caughtUp();
    expect(await rejection(standby.append([action(['customer', 'x'], [{ op: 'add', path: '/a', value: 1 }])], { base: 0 }))).toBeInstanceOf(StorageError);
    expect(await rejection(standby.projection('customers').catchUp())).toBeInstanceOf(StorageError);
    expect(await standby.head()).toBe(await primary.head());
  });
});

reportSkipped('COHERENCE_TEST_POSTGRES_STANDBY_URL', 'a log read on a streaming hot standby');
