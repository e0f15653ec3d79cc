/**
 * Values sealed under several keys at once: what coherence's own parts (process states, issue 12)
 * append through the internal `append(core, ..., reservedKinds)`. Such a value reads back while
 * every key lives, reads redacted once any is destroyed, shows as a `sealed` envelope to raw
 * reads, and never reaches the files in plaintext. `encrypt: { keys }` is not for `log.append`.
 */
import { describe, expect, it } from 'vitest';
import { coreOf } from '../src/api/internal.ts';
import { append } from '../src/log/append.ts';
import { InvalidEventError, type Identity, type LogEvent } from '../src/index.ts';
import { filesContaining, newMasterKey, patchOf } from './support/crypto-fixtures.ts';
import { action, tempLog } from './support/temp-log.ts';

const alice: Identity = ['customer', 'alice'];
const shop: Identity = ['shop', 'corner'];
const process: Identity = ['$process', 'fulfilment:order-7'];

describe('values sealed under several keys', () => {
  it('read back while every key lives, redacted once one is gone, sealed in raw reads, never in the files', async () => {
    const { log, path } = await tempLog({ masterKey: newMasterKey(), redact: () => '[erased]' });
    const secret = 'state folded from alice and the shop: 1 Rabbit Hole';
    await log.keys.create(alice);
    await log.keys.create(shop);
    const result = await append(coreOf(log), [
      { source: 'process', action: { reason: 'reacted', actor: ['$process', 'fulfilment'], aggregate: process, patch: [{ op: 'add', path: '/state', value: secret }, { op: 'add', path: '/step', value: 'shipped' }] }, encrypt: { keys: [shop, alice], paths: ['/state'] } } as never,
    ], { base: 0 }, true);
    expect(result.status).toBe('ok');
    const [event] = result.status === 'ok' ? result.events : [];
    expect((event as { triggers: Identity[] }).triggers).toEqual([shop, alice]);
    expect(patchOf(await log.get(1))).toEqual([{ op: 'add', path: '/state', value: secret }, { op: 'add', path: '/step', value: 'shipped' }]);

    const raw: LogEvent[] = [];
    for await (const e of log.read({ raw: true })) raw.push(e);
    const envelope = patchOf(raw[0])[0]?.value as { envelope: string; keys: Identity[]; data: string };
    expect(envelope).toEqual({ envelope: 'sealed', keys: [alice, shop], data: expect.any(String) });
    expect(filesContaining(path, secret)).toEqual([]);

    await log.keys.shred(shop);
    expect(patchOf(await log.get(1))[0]).toEqual({ op: 'add', path: '/state', value: '[erased]' });
    expect((await log.state(process)).state).toEqual({ state: '[erased]', step: 'shipped' });
    expect(await log.verify()).toEqual({ ok: true, events: 2 });
  });

  it('is refused on log.append: a public action encrypts under one key', async () => {
    const { log } = await tempLog({ masterKey: newMasterKey() });
    const error = await log.append([{ ...action(['book', 1], [{ op: 'add', path: '/a', value: 1 }]), encrypt: { keys: [alice, shop] } } as never], { base: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as Error).message).toMatch(/encrypt\.keys: expected one of key, paths/);
    expect(await log.head()).toBe(0);
  });
});
