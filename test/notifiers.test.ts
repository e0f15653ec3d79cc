/**
 * Notifiers (SPEC 11): at least once with the same key on every attempt, backoff, dead letters
 * without payloads, order per aggregate (effects included), redeliver and discard, each attempt
 * reading the event afresh, bad arguments.
 */
import { describe, expect, it } from 'vitest';
import { createNotifier, InvalidArgumentError, type DeadLetter, type Identity, type LogEvent, type NotifierOptions } from '../src/index.ts';
import { appendOk, newMasterKey } from './support/crypto-fixtures.ts';
import { action, effect, tempLog } from './support/temp-log.ts';

const fast = { attempts: 3, minDelayMs: 1, maxDelayMs: 4 };
const customer = (id: number): Identity => ['customer', id];
const signedUp = (id: number, extra: Parameters<typeof action>[2] = {}) => action(customer(id), [{ op: 'add', path: '/n', value: id }], extra);

/** A handler that records each call as `seq#attempt` and fails as `fails(event, attempt)` says. */
function recorder(fails: (event: LogEvent, attempt: number) => boolean = () => false) {
  const calls: string[] = [];
  const keys: string[] = [];
  const events: LogEvent[] = [];
  const handle: NotifierOptions['handle'] = async (event, { attempt, idempotencyKey }) => {
    calls.push(`${event.seq}#${attempt}`);
    keys.push(idempotencyKey);
    events.push(event);
    if (fails(event, attempt)) throw new Error(`mail server down for ${event.seq}`);
  };
  return { calls, keys, events, handle };
}

async function letters(items: AsyncIterable<DeadLetter>): Promise<DeadLetter[]> {
  const found: DeadLetter[] = [];
  for await (const letter of items) found.push(letter);
  return found;
}

describe('a notifier', () => {
  it('hands each event to handle until it resolves: failing twice then succeeding is three calls with the same key', async () => {
    const { log } = await tempLog();
    await appendOk(log, [signedUp(1), signedUp(2)]);
    const { calls, keys, handle } = recorder((event, attempt) => event.seq === 1 && attempt < 3);
    const mailer = createNotifier(log, 'welcome', { handle, retry: { attempts: 5, minDelayMs: 1, maxDelayMs: 4 } });
    expect(await mailer.catchUp()).toEqual({ from: 1, to: 2, delivered: 2, failed: 2, deadLettered: 0 });
    expect(calls.filter((c) => c.startsWith('1#'))).toEqual(['1#1', '1#2', '1#3']);
    expect(new Set(keys.filter((_, i) => calls[i]?.startsWith('1#')))).toEqual(new Set(['welcome:1']));
    expect(calls).toContain('2#1');
    expect(await mailer.position()).toBe(2);
    expect(await letters(mailer.deadLetters())).toEqual([]);
    expect(await mailer.catchUp()).toEqual({ from: 3, to: 2, delivered: 0, failed: 0, deadLettered: 0 });
  });

  it('waits a jittered, growing pause between attempts', async () => {
    const { log } = await tempLog();
    await appendOk(log, [signedUp(1)]);
    const at: number[] = [];
    const mailer = createNotifier(log, 'paced', {
      retry: { attempts: 4, minDelayMs: 20, maxDelayMs: 200 },
      async handle() {
        at.push(performance.now());
        if (at.length < 4) throw new Error('later');
      },
    });
    await mailer.catchUp();
    const pauses = at.slice(1).map((t, i) => t - (at[i] as number));
    expect(pauses.every((p) => p >= 19)).toBe(true);
    expect(pauses.every((p, i) => p <= 20 * 2 ** (i + 1) + 50)).toBe(true);
  });

  it('dead-letters an event after every attempt failed (no payload kept); later events of its aggregate wait while other aggregates\' go on in order; redeliver delivers them in order', async () => {
    const { log } = await tempLog({ clock: () => new Date('2025-06-01T12:00:00.000Z') });
    await appendOk(log, [signedUp(1), signedUp(2), signedUp(1), signedUp(2), signedUp(1), signedUp(3)]);
    let down = true;
    const { calls, handle } = recorder((event) => down && event.seq === 1);
    const mailer = createNotifier(log, 'welcome', { handle, retry: fast });
    expect(await mailer.catchUp()).toEqual({ from: 1, to: 6, delivered: 3, failed: 3, deadLettered: 1 });
    expect(calls.filter((c) => !c.startsWith('1#'))).toEqual(['2#1', '4#1', '6#1']);
    expect(calls.filter((c) => c.startsWith('1#'))).toEqual(['1#1', '1#2', '1#3']);
    const [letter] = await letters(mailer.deadLetters());
    expect(letter).toEqual({ seq: 1, aggregate: customer(1), attempts: 3, error: 'mail server down for 1', at: new Date('2025-06-01T12:00:00.000Z') });
    expect(Object.keys(letter as object).sort()).toEqual(['aggregate', 'at', 'attempts', 'error', 'seq']);
    expect((await log.stats()).notifiers).toEqual([{ name: 'welcome', position: 6, lag: 0, deadLetters: 1 }]);
    // Events of customer 1 keep waiting behind the dead letter; customer 2's new one goes.
    await appendOk(log, [signedUp(1), signedUp(2)]);
    calls.length = 0;
    await mailer.catchUp();
    expect(calls).toEqual(['8#1']);

    down = false;
    await mailer.redeliver(1);
    expect(await letters(mailer.deadLetters())).toEqual([]);
    expect(await mailer.catchUp()).toMatchObject({ delivered: 4, deadLettered: 0 });
    expect(calls).toEqual(['8#1', '1#4', '3#1', '5#1', '7#1']);
    expect((await log.stats()).notifiers).toEqual([{ name: 'welcome', position: 8, lag: 0, deadLetters: 0 }]);
  });

  it('discard drops a dead letter and releases what waits behind it, in order', async () => {
    const { log } = await tempLog();
    await appendOk(log, [signedUp(1), signedUp(1), signedUp(1)]);
    const { calls, handle } = recorder((event) => event.seq === 1);
    const mailer = createNotifier(log, 'welcome', { handle, retry: { attempts: 1 } });
    await mailer.catchUp();
    expect(calls).toEqual(['1#1']);
    await mailer.discard(1);
    await mailer.catchUp();
    expect(calls).toEqual(['1#1', '2#1', '3#1']);
    expect(await letters(mailer.deadLetters())).toEqual([]);
  });

  it('refuses to redeliver or discard a seq that is no dead letter, changing nothing', async () => {
    const { log } = await tempLog();
    await appendOk(log, [signedUp(1), signedUp(2)]);
    const mailer = createNotifier(log, 'welcome', { handle: recorder((e) => e.seq === 2).handle, retry: { attempts: 1 } });
    await mailer.catchUp();
    for (const seq of [1, 3, 99]) {
      await expect(mailer.redeliver(seq)).rejects.toThrow(new InvalidArgumentError(`seq: expected a dead letter of notifier "welcome", got ${seq}, which is not one`));
      await expect(mailer.discard(seq)).rejects.toThrow(InvalidArgumentError);
    }
    for (const seq of [0, -1, 1.5, '2', null]) await expect(mailer.redeliver(seq as number)).rejects.toThrow(/^seq: expected an integer >= 1/);
    expect(await letters(mailer.deadLetters())).toMatchObject([{ seq: 2 }]);
  });

  it('orders an effect behind the pending events of every aggregate it affects, and their later events behind it', async () => {
    const { log } = await tempLog();
    const promo: Identity = ['promo', 1];
    await appendOk(log, [signedUp(1, { triggers: [promo] }), signedUp(2, { triggers: [promo] }), signedUp(3), effect(promo, 'withdrawn'), signedUp(2), signedUp(3)]);
    let down = true;
    const { calls, handle, events } = recorder((event) => down && event.seq === 1);
    const mailer = createNotifier(log, 'welcome', { handle, kinds: ['customer'], retry: { attempts: 1 } });
    await mailer.catchUp();
    // 4 (the effect, on customers 1 and 2) waits behind 1; 5 (customer 2) behind 4; 6 goes.
    expect(calls).toEqual(['1#1', '2#1', '3#1', '6#1']);
    down = false;
    await mailer.redeliver(1);
    await mailer.catchUp();
    expect(calls).toEqual(['1#1', '2#1', '3#1', '6#1', '1#2', '4#1', '5#1']);
    expect('effect' in (events[5] as LogEvent)).toBe(true);
  });

  it('delivers what kinds and aggregates select, effects affecting them included, and none of coherence\'s own events', async () => {
    const { log } = await tempLog();
    await appendOk(log, [signedUp(1, { triggers: [['promo', 1]] }), action(['book', 1], [{ op: 'add', path: '/a', value: 1 }], { triggers: [['promo', 2]] }), effect(['promo', 1], 'withdrawn'), effect(['promo', 2], 'withdrawn'), signedUp(2)]);
    const customers = recorder();
    await createNotifier(log, 'customers', { handle: customers.handle, kinds: ['customer'] }).catchUp();
    expect(customers.calls).toEqual(['1#1', '3#1', '5#1']);
    const one = recorder();
    await createNotifier(log, 'one', { handle: one.handle, aggregates: [customer(2)] }).catchUp();
    expect(one.calls).toEqual(['5#1']);
  });

  it('reads the event afresh for every attempt: once its key is shredded, the next attempt gets the redact value', async () => {
    const { log } = await tempLog({ masterKey: newMasterKey(), redact: () => '[erased]' });
    const key: Identity = ['customer', 1];
    await appendOk(log, [action(customer(1), [{ op: 'add', path: '/email', value: 'ann@example.org' }], { encrypt: { key } })]);
    const seen: unknown[] = [];
    const mailer = createNotifier(log, 'welcome', {
      retry: fast,
      async handle(event, { attempt }) {
        seen.push('action' in event ? (event.action.patch[0] as { value?: unknown }).value : undefined);
        if (attempt === 1) {
          await log.keys.shred(key);
          throw new Error('try later');
        }
      },
    });
    await mailer.catchUp();
    expect(seen).toEqual(['ann@example.org', '[erased]']);
  });

  it('follows: delivers appends at once, retries after the backoff, and picks up a redelivery marked by another log on the store', async () => {
    const { log, reopen } = await tempLog();
    let down = true;
    const { calls, handle } = recorder((event) => down && event.seq === 2);
    const mailer = createNotifier(log, 'welcome', { handle, retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 } });
    const errors: unknown[] = [];
    const stop = mailer.follow({ onError: (e) => errors.push(e) });
    await appendOk(log, [signedUp(1)]);
    await until(() => calls.includes('1#1'));
    await appendOk(log, [signedUp(2), signedUp(2)]);
    await until(() => calls.includes('2#2'));
    // Marked by another log (as the CLI does), with a handler that never runs there, once the
    // dead letter is in the stored checkpoint (committed shortly after the last attempt).
    down = false;
    const other = await reopen();
    const marker = createNotifier(other, 'welcome', { handle: () => Promise.reject(new Error('not here')) });
    let stored = false;
    await until(() => stored, 5_000, async () => {
      for await (const letter of marker.deadLetters()) if (letter.seq === 2) stored = true;
    });
    await marker.redeliver(2);
    await until(() => calls.includes('3#1'), 3_000);
    await stop();
    expect(calls).toEqual(['1#1', '2#1', '2#2', '2#3', '3#1']);
    expect(errors).toEqual([]);
  });

  it('stops waiting out a long backoff when the log closes: catchUp rejects with LogClosedError', async () => {
    const { log } = await tempLog();
    await appendOk(log, [signedUp(1)]);
    const mailer = createNotifier(log, 'slow', { handle: () => Promise.reject(new Error('down')), retry: { minDelayMs: 60_000, maxDelayMs: 60_000 } });
    const caughtUp = mailer.catchUp();
    caughtUp.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await log.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(caughtUp).rejects.toMatchObject({ code: 'LOG_CLOSED' });
  });

  it('refuses bad arguments with InvalidArgumentError', async () => {
    const { log } = await tempLog();
    const handle = async () => {};
    const bad: [unknown, unknown, RegExp][] = [
      ['', { handle }, /^name: expected a non-empty string/],
      ['n', {}, /^options.handle: expected a function/],
      ['n', { handle, retry: { attempts: 0 } }, /^options.retry.attempts: expected an integer >= 1/],
      ['n', { handle, retry: { minDelayMs: -1 } }, /^options.retry.minDelayMs/],
      ['n', { handle, retry: { tries: 3 } }, /^options.retry.tries: expected one of/],
      ['n', { handle, kinds: [''] }, /^options.kinds\[0\]: expected a non-empty string/],
      ['n', { handle, aggregates: [['a']] }, /^options.aggregates\[0\]: expected an identity/],
      ['n', { handle, from: 1.5 }, /^options.from: expected an integer >= 1/],
      ['n', { handle, other: true }, /^options.other: expected one of/],
    ];
    for (const [name, options, message] of bad) expect(() => createNotifier(log, name as string, options as NotifierOptions)).toThrow(message);
    const boom = new Error('boom');
    const hostile = Object.defineProperty({ handle }, 'retry', { enumerable: true, get() { throw boom; } });
    expect(() => createNotifier(log, 'n', hostile)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', cause: boom }));
    const mailer = createNotifier(log, 'n', { handle });
    expect(() => mailer.follow({ onError: 'x' } as never)).toThrow(/^options.onError: expected a function/);
    expect(() => mailer.follow({ onCatchUp: () => {} } as never)).toThrow(/^options.onCatchUp: expected one of onError/);
    expect((await log.stats()).notifiers).toEqual([]);
  });
});

/** Waits for `condition`, running `probe` (which may update what it reads) before each look. */
async function until(condition: () => boolean, timeoutMs = 5_000, probe?: () => Promise<void>): Promise<void> {
  const started = Date.now();
  for (;;) {
    await probe?.();
    if (condition()) return;
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
