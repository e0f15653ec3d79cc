import { describe, expect, it } from 'vitest';
import { KeyDestroyedError, type EffectEvent, type Identity, type NewAction } from '../../src/index.ts';
import { appendOk, identityArg, newMasterKey, patchOf, rejection, runChild } from '../support/crypto-fixtures.ts';
import { freshSchema, POSTGRES_URL, postgresLog, reportSkipped } from '../support/postgres.ts';
import { postgresTarget } from '../support/store-target.ts';

const alice: Identity = ['customer', 'alice'];
const bob: Identity = ['customer', 'bob'];
const aliceKey: Identity = ['user', 'alice'];
const bobKey: Identity = ['user', 'bob'];

function encrypted(aggregate: Identity, key: Identity, email: string): NewAction {
  return { source: 'test', action: { reason: 'signup', actor: aggregate, aggregate, patch: [{ op: 'add', path: '/email', value: email }] }, encrypt: { key } };
}

describe.skipIf(POSTGRES_URL === undefined)('a shred on PostgreSQL', () => {
  it('is seen at once by another process that has the log open and has read the plaintext', async () => {
    const schema = freshSchema();
    const log = await postgresLog({ masterKey: newMasterKey() }, schema);
    await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(bob, bobKey, 'bob@example.com')]);
    // The plaintext was read, so the unwrapped key sits in this process's cache.
    expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
    const projection = log.projection('emails');
    await projection.catchUp();
    expect(await projection.get(alice)).toEqual({ email: 'alice@example.com' });

    const effect = await runChild<EffectEvent>('crypto-shred.ts', [postgresTarget(schema), identityArg(aliceKey)]);
    expect(effect).toMatchObject({ seq: 3, source: 'keystore', effect: { reason: 'shredded', trigger: aliceKey } });

    // The same open log, no reopen: every read redacts at once.
    expect(patchOf(await log.get(1))[0]?.value).toBeNull();
    expect(await log.state(alice)).toEqual({ state: { email: null }, head: 3 });
    expect(patchOf(await log.get(2))[0]?.value).toBe('bob@example.com');
    await projection.catchUp();
    expect(await projection.get(alice)).toEqual({ email: null });
    expect(await projection.get(bob)).toEqual({ email: 'bob@example.com' });
    expect(await rejection(log.append([encrypted(alice, aliceKey, 'again@example.com')], { base: 3 }))).toBeInstanceOf(KeyDestroyedError);
    expect(await log.verify()).toEqual({ ok: true, events: 3 });
  });
});

reportSkipped('COHERENCE_TEST_POSTGRES_URL', 'a shred seen by another process on PostgreSQL');
