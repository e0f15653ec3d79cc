/**
 * Idempotency keys (SPEC 3 and 10): a keyed batch, and a keyed command, take effect at most once
 * per store, from any process, even after a crash; the key is checked before conflicts.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCommandService, InvalidArgumentError, openLog, type Log, type LogEvent } from '../src/index.ts';
import { spawnChild } from './support/child-process.ts';
import { actor, deciders } from './support/command-fixtures.ts';
import { action, allEvents, tempDir, tempLog } from './support/temp-log.ts';
import { rejection } from './support/crypto-fixtures.ts';

const as = { actor, source: 'test' };
const increment = (value = 1) => action(['counter', 'shared'], [{ op: 'add', path: '/n', value }]);
/** An event as it looks once printed as JSON and parsed back. */
const asJson = (events: LogEvent[]): unknown => JSON.parse(JSON.stringify(events));

async function commandsOn(log: Log) {
  return createCommandService(log, { deciders, retry: { minDelayMs: 0, maxDelayMs: 0 } });
}

describe('append with an idempotencyKey', () => {
  it('writes a keyed batch once: a repeat writes nothing and returns duplicate with the events the first wrote', async () => {
    const { log } = await tempLog();
    const first = await log.append([increment(), increment(2)], { base: 0, idempotencyKey: 'order-17' });
    const again = await log.append([increment(), increment(2)], { base: 2, idempotencyKey: 'order-17' });
    expect(first.status).toBe('ok');
    expect(again).toEqual({ status: 'duplicate', events: first.status === 'ok' ? first.events : [] });
    expect(await log.head()).toBe(2);
  });

  it('checks the key before conflicts: a retry with a stale base is duplicate, not conflict', async () => {
    const { log } = await tempLog();
    const first = await log.append([increment()], { base: 0, idempotencyKey: 'k' });
    await log.append([increment(5)], { base: 1 });
    expect(await log.append([increment()], { base: 0, idempotencyKey: 'k' })).toEqual({ status: 'duplicate', events: first.status === 'ok' ? first.events : [] });
    expect(await log.head()).toBe(2);
  });

  it('returns duplicate for any batch under a seen key, whatever it holds', async () => {
    const { log } = await tempLog();
    await log.append([increment()], { base: 0, idempotencyKey: 'k' });
    expect(await log.append([action(['other', 1], [{ op: 'add', path: '/x', value: 1 }])], { base: 1, idempotencyKey: 'k' })).toMatchObject({ status: 'duplicate', events: [{ seq: 1 }] });
  });

  it('records nothing in a dry run with a key', async () => {
    const { log } = await tempLog();
    expect(await log.append([increment()], { base: 0, idempotencyKey: 'k', dryRun: true })).toMatchObject({ status: 'ok', events: [{ seq: 1 }] });
    expect(await log.head()).toBe(0);
    expect(await log.append([increment()], { base: 0, idempotencyKey: 'k' })).toMatchObject({ status: 'ok' });
    expect(await log.append([increment()], { base: 1, idempotencyKey: 'k', dryRun: true })).toMatchObject({ status: 'duplicate', events: [{ seq: 1 }] });
  });

  it('refuses a key that is empty, over 512 bytes of UTF-8, or not a string, and writes nothing', async () => {
    const { log } = await tempLog();
    const cases: [unknown, RegExp][] = [
      ['', /^options\.idempotencyKey: expected a non-empty string, got ""/],
      ['k'.repeat(513), /^options\.idempotencyKey: expected at most 512 bytes of UTF-8, got 513/],
      ['é'.repeat(257), /^options\.idempotencyKey: expected at most 512 bytes of UTF-8, got 514/], // 257 characters
      ['€'.repeat(171), /^options\.idempotencyKey: expected at most 512 bytes of UTF-8, got 513/],
      [42, /^options\.idempotencyKey: expected a non-empty string, got 42/],
      [{ key: 'k' }, /^options\.idempotencyKey: expected a non-empty string, got an object/],
      [null, /^options\.idempotencyKey: expected a non-empty string, got null/],
    ];
    for (const [key, message] of cases) {
      const error = await rejection(log.append([increment()], { base: 0, idempotencyKey: key as string }));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(message);
    }
    expect(await log.head()).toBe(0);
    expect(await log.append([increment()], { base: 0, idempotencyKey: 'é'.repeat(256) })).toMatchObject({ status: 'ok' });
  });
});

describe('execute with an idempotencyKey', () => {
  it('runs a command once: a repeat decides nothing new and returns duplicate with the events of the first', async () => {
    const { log } = await tempLog();
    const commands = await commandsOn(log);
    const first = await commands.execute('increment', { id: 'shared' }, { ...as, idempotencyKey: 'req-1' });
    const again = await commands.execute('increment', { id: 'shared' }, { ...as, idempotencyKey: 'req-1' });
    expect(first).toMatchObject({ status: 'ok', attempts: 1 });
    expect(again).toEqual({ status: 'duplicate', events: first.status === 'ok' ? first.events : [] });
    expect((await log.state(['counter', 'shared'])).state).toEqual({ n: 1 });
  });

  it('returns duplicate for a repeat of a command that went through, even where the decider would now refuse it', async () => {
    const { log } = await tempLog();
    await log.append([action(['book', 'N'], [{ op: 'add', path: '/copies', value: 1 }])], { base: 0 });
    const commands = await commandsOn(log);
    const first = await commands.execute('borrow', { isbn: 'N' }, { ...as, idempotencyKey: 'loan-1' });
    expect(first).toMatchObject({ status: 'ok', events: [{ seq: 2 }] });
    // The last copy is gone, taken by this very command: its repeat is that command, not a new refusal.
    expect(await commands.execute('borrow', { isbn: 'N' }, { ...as, idempotencyKey: 'loan-1' })).toMatchObject({ status: 'duplicate', events: [{ seq: 2 }] });
    expect(await commands.execute('borrow', { isbn: 'N' }, { ...as, idempotencyKey: 'loan-2' })).toEqual({ status: 'rejected', reason: 'no-copies', details: { isbn: 'N' } });
  });

  it("returns duplicate, not conflict, for a repeat on the actor's stale base", async () => {
    const { log } = await tempLog();
    const commands = await commandsOn(log);
    await commands.execute('increment', { id: 'shared' }, { ...as, base: 0, idempotencyKey: 'k' });
    await log.append([increment(9)], { base: 1 });
    expect(await commands.execute('increment', { id: 'shared' }, { ...as, base: 0, idempotencyKey: 'k' })).toMatchObject({ status: 'duplicate', events: [{ seq: 1 }] });
  });

  it('records nothing in a dry run: the command then runs for real under the key', async () => {
    const { log } = await tempLog();
    const commands = await commandsOn(log);
    expect(await commands.execute('increment', { id: 'shared' }, { ...as, idempotencyKey: 'k', dryRun: true })).toMatchObject({ status: 'ok', events: [{ seq: 1 }] });
    expect(await log.head()).toBe(0);
    expect(await commands.execute('increment', { id: 'shared' }, { ...as, idempotencyKey: 'k' })).toMatchObject({ status: 'ok', events: [{ seq: 1 }] });
    expect(await commands.execute('increment', { id: 'shared' }, { ...as, idempotencyKey: 'k', dryRun: true })).toMatchObject({ status: 'duplicate' });
  });

  it('records no key for a command that was refused or decided nothing: it wrote nothing to repeat', async () => {
    const { log } = await tempLog();
    const commands = await commandsOn(log);
    expect(await commands.execute('borrow', { isbn: 'N' }, { ...as, idempotencyKey: 'k' })).toMatchObject({ status: 'rejected' });
    await log.append([action(['book', 'N'], [{ op: 'add', path: '/copies', value: 1 }])], { base: 0 });
    expect(await commands.execute('borrow', { isbn: 'N' }, { ...as, idempotencyKey: 'k' })).toMatchObject({ status: 'ok' });
  });

  it('refuses a bad key before deciding, and writes nothing', async () => {
    const { log } = await tempLog();
    const commands = await commandsOn(log);
    for (const key of ['', 'k'.repeat(513), 7]) {
      expect(await rejection(commands.execute('increment', { id: 'shared' }, { ...as, idempotencyKey: key as string }))).toBeInstanceOf(InvalidArgumentError);
    }
    expect(await log.head()).toBe(0);
  });
});

describe('across processes', () => {
  for (const mode of ['append', 'execute'] as const) {
    it(`lets exactly one of four processes ${mode} under one key at once; the others get duplicate with the same events`, async () => {
      const path = join(tempDir(), 'store');
      const children = Array.from({ length: 4 }, () => spawnChild('idempotent-child.ts', [path, mode, 'one-key']));
      try {
        for (const child of children) expect(await child.line()).toBe('ready');
        for (const child of children) child.send('go');
        const results = await Promise.all(children.map(async (child) => JSON.parse(await child.line()) as { status: string; events: unknown[] }));
        expect(results.filter((r) => r.status === 'ok')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'duplicate')).toHaveLength(3);
        const written = results.find((r) => r.status === 'ok')?.events;
        for (const result of results) expect(result.events).toEqual(written);
      } finally {
        for (const child of children) child.end();
        for (const child of children) expect((await child.exited).code).toBe(0);
      }
      const log = await openLog({ path });
      expect(await log.head()).toBe(1);
      await log.close();
    });

    it(`returns duplicate to a retry of a keyed ${mode} whose process was SIGKILLed right after the commit`, async () => {
      const path = join(tempDir(), 'store');
      const child = spawnChild('idempotent-child.ts', [path, mode, 'crash-key']);
      expect(await child.line()).toBe('ready');
      child.send('go');
      const printed = JSON.parse(await child.line()) as { status: string; events: LogEvent[] };
      child.kill('SIGKILL');
      expect((await child.exited).signal).toBe('SIGKILL');
      expect(printed.status).toBe('ok');

      const log = await openLog({ path });
      try {
        const retry = mode === 'append'
          ? await log.append([increment()], { base: 0, idempotencyKey: 'crash-key' })
          : await (await commandsOn(log)).execute('increment', { id: 'shared' }, { ...as, idempotencyKey: 'crash-key' });
        expect(retry.status).toBe('duplicate');
        expect(asJson((retry as { events: LogEvent[] }).events)).toEqual(printed.events);
        expect(asJson(await allEvents(log))).toEqual(printed.events);
      } finally {
        await log.close();
      }
    });
  }
});
