/**
 * Arguments that throw when they are read (a revoked Proxy, a getter that throws, a Proxy of a
 * Date) are bad input like any other (SPEC.md section 7): every public function throws an
 * InvalidArgumentError or InvalidEventError, with what the argument threw as `cause`, and the
 * store is left as it was.
 */
import { describe, expect, it } from 'vitest';
import { CoherenceError, InvalidArgumentError, InvalidEventError, isActionEvent, openLog, type Log, type NewAction } from '../src/index.ts';
import { action, allEvents, tempDir, tempLog } from './support/temp-log.ts';

const MASTER_KEY = '5e'.repeat(32);
const clock = () => new Date('2024-05-01T12:00:00.000Z');

/** Lets tests hand the API what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

/** What reading the hostile values throws, so the tests can find it again as the cause. */
class Boom extends Error {}

/** An object (or an array) whose Proxy has been revoked: any look at it throws a TypeError. */
function revoked(target: object = {}): object {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

/** An object whose property `key` throws Boom when read. */
function throwing(key: string, base: object = {}): object {
  return Object.defineProperty({ ...base }, key, { enumerable: true, get() { throw new Boom(`reading ${key}`); } });
}

/** An array whose element `index` throws Boom when read. */
function throwingAt(index: number, base: unknown[]): unknown[] {
  const array = [...base];
  Object.defineProperty(array, index, { enumerable: true, get() { throw new Boom(`reading [${index}]`); } });
  return array;
}

/** Passes `instanceof Date`, yet Date methods refuse it. */
const dateProxy = (): Date => new Proxy(new Date(), {});

const book = ['book', 'Neuromancer'] as const;
const good: NewAction = action(['book', 'Neuromancer'], [{ op: 'add', path: '/title', value: 'Neuromancer' }]);

/** Calls `call` and returns what it threw or rejected with (failing when it did neither). */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    const result = call();
    if (result !== null && typeof result === 'object' && Symbol.asyncIterator in result) {
      for await (const _ of result as AsyncIterable<unknown>) break;
    } else {
      await result;
    }
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

function expectArgumentError(error: unknown, kind: typeof InvalidArgumentError | typeof InvalidEventError, what: string): void {
  expect(error, what).toBeInstanceOf(kind);
  expect(error, what).toBeInstanceOf(CoherenceError);
  const cause = (error as Error).cause;
  expect(cause, `${what}: cause`).toBeInstanceOf(Error);
  expect(cause instanceof Boom || cause instanceof TypeError, `${what}: cause is what the argument threw`).toBe(true);
  expect((error as Error).message, what).toContain('expected a value that can be read, got one that throws when read');
}

async function storeSnapshot(log: Log) {
  const keys = [];
  for await (const info of log.keys.list()) keys.push(info);
  return { events: await allEvents(log), keys, stats: await log.stats(), position: await log.projection('books', { kinds: ['book'] }).position() };
}

describe('arguments that throw when read', () => {
  it('make openLog throw InvalidArgumentError with the cause, and open nothing', async () => {
    const dir = tempDir();
    const cases: [string, unknown][] = [
      ['a revoked options object', revoked()],
      ['a throwing path getter', throwing('path')],
      ['a revoked masterKey', { path: dir, masterKey: revoked(new Uint8Array(32)) }],
      ['a Proxy of a Uint8Array as masterKey', { path: dir, masterKey: new Proxy(new Uint8Array(32), {}) }],
      ['a keyTtl with a throwing getter', { path: dir, keyTtl: throwing('days') }],
      ['a revoked keyTtl', { path: dir, keyTtl: revoked() }],
    ];
    for (const [what, options] of cases) {
      expectArgumentError(await failure(() => openLog(loose(options))), InvalidArgumentError, what);
    }
  });

  it('make every method of the log, its key ring and its projections throw the right error with the cause, and change nothing', async () => {
    const { log } = await tempLog({ clock, masterKey: MASTER_KEY });
    expect((await log.append([good], { base: 0 })).status).toBe('ok');
    await log.keys.create(['customer', 1]);
    const books = log.projection('books', { kinds: ['book'] });
    await books.catchUp();
    const before = await storeSnapshot(log);

    const events: [string, () => unknown][] = [
      ['a revoked event', () => log.append([loose(revoked())], { base: 1 })],
      ['a batch whose first event throws', () => log.append(loose(throwingAt(0, [good])), { base: 1 })],
      ['an event whose action throws', () => log.append([loose(throwing('action', good))], { base: 1 })],
      ['an action whose reason throws', () => log.append([{ ...good, action: loose(throwing('reason', good.action)) }], { base: 1 })],
      ['a revoked actor', () => log.append([{ ...good, action: { ...good.action, actor: loose(revoked([])) } }], { base: 1 })],
      ['an aggregate whose id throws', () => log.append([{ ...good, action: { ...good.action, aggregate: loose(throwingAt(1, [...book])) } }], { base: 1 })],
      ['a revoked patch', () => log.append([{ ...good, action: { ...good.action, patch: loose(revoked([])) } }], { base: 1 })],
      ['an operation whose op throws', () => log.append([{ ...good, action: { ...good.action, patch: [loose(throwing('op', { path: '/a', value: 1 }))] } }], { base: 1 })],
      ['a revoked value', () => log.append([{ ...good, action: { ...good.action, patch: [{ op: 'add', path: '/a', value: revoked() }] } }], { base: 1 })],
      ['a deep value with a throwing getter', () => log.append([{ ...good, action: { ...good.action, patch: [{ op: 'add', path: '/a', value: { b: [1, throwing('c')] } }] } }], { base: 1 })],
      ['a Proxy of a Date as timestamp', () => log.append([{ ...good, timestamp: dateProxy() }], { base: 1 })],
      ['revoked triggers', () => log.append([{ ...good, triggers: loose(revoked([])) }], { base: 1 })],
      ['a revoked encrypt', () => log.append([{ ...good, encrypt: loose(revoked()) }], { base: 1 })],
    ];
    for (const [what, call] of events) expectArgumentError(await failure(call), InvalidEventError, what);

    const calls: [string, () => unknown][] = [
      ['append: a revoked batch', () => log.append(loose(revoked([])), { base: 1 })],
      ['append: revoked options', () => log.append([good], loose(revoked()))],
      ['append: a throwing base', () => log.append([good], loose(throwing('base')))],
      ['append: revoked resolved', () => log.append([good], { base: 0, resolved: loose(revoked([])) })],
      ['read: revoked options', () => log.read(loose(revoked()))],
      ['read: a throwing from', () => log.read(loose(throwing('from')))],
      ['read: revoked aggregates', () => log.read({ aggregates: loose(revoked([])) })],
      ['read: a revoked aggregate', () => log.read({ aggregates: [loose(revoked([]))] })],
      ['read: kinds whose first throws', () => log.read({ kinds: loose(throwingAt(0, ['book'])) })],
      ['conflicts: a revoked aggregate', () => log.conflicts(0, loose(revoked([])))],
      ['state: an aggregate whose kind throws', () => log.state(loose(throwingAt(0, [...book])))],
      ['verify: revoked options', () => log.verify(loose(revoked()))],
      ['verify: a throwing onProgress', () => log.verify(loose(throwing('onProgress')))],
      ['compact: revoked options', () => log.compact(loose(revoked()))],
      ['projection: revoked options', () => log.projection('books', loose<object>(revoked()))],
      ['projection: a throwing init', () => log.projection('books', loose<object>(throwing('init')))],
      ['projection: revoked aggregates', () => log.projection('books', { aggregates: loose(revoked([])) })],
      ['projection.get: a revoked aggregate', () => books.get(loose(revoked([])))],
      ['projection.entries: revoked options', () => books.entries(loose(revoked()))],
      ['projection.catchUp: revoked options', () => books.catchUp(loose(revoked()))],
      ['projection.rebuild: a throwing onProgress', () => books.rebuild(loose(throwing('onProgress')))],
      ['projection.follow: revoked options', () => books.follow(loose(revoked()))],
      ['keys.create: a revoked key', () => log.keys.create(loose(revoked([])))],
      ['keys.create: revoked options', () => log.keys.create(['customer', 2], loose(revoked()))],
      ['keys.create: a Proxy of a Date as expiresAt', () => log.keys.create(['customer', 2], { expiresAt: dateProxy() })],
      ['keys.create: a ttl whose days throws', () => log.keys.create(['customer', 2], { ttl: loose(throwing('days')) })],
      ['keys.get: a key whose id throws', () => log.keys.get(loose(throwingAt(1, ['customer', 1])))],
      ['keys.list: revoked options', () => log.keys.list(loose(revoked()))],
      ['keys.shred: revoked options', () => log.keys.shred(['customer', 1], loose(revoked()))],
      ['keys.shred: a throwing reason', () => log.keys.shred(['customer', 1], loose(throwing('reason')))],
      ['keys.expire: a Proxy of a Date', () => log.keys.expire(dateProxy())],
      ['isActionEvent: a revoked event', () => isActionEvent(loose(revoked()))],
    ];
    for (const [what, call] of calls) expectArgumentError(await failure(call), InvalidArgumentError, what);

    expect(await storeSnapshot(log)).toEqual(before);
  });

  it('name the place inside the argument that threw', async () => {
    const { log } = await tempLog({ clock });
    const deep = await failure(() => log.append([{ ...good, action: { ...good.action, patch: [{ op: 'add', path: '/a', value: { b: [1, throwing('c')] } }] } }], { base: 0 }));
    expect(deep).toBeInstanceOf(InvalidEventError);
    expect((deep as InvalidEventError).path).toBe('action.patch[0].value.b[1].c');
    expect((deep as Error).message).toBe('events[0].action.patch[0].value.b[1].c: expected a value that can be read, got one that throws when read (Error: reading c)');
    expect((deep as Error).cause).toBeInstanceOf(Boom);

    const option = await failure(() => log.append([good], { base: 0, resolved: loose(throwingAt(1, [1, 2])) }));
    expect((option as Error).message).toBe('options.resolved[1]: expected a value that can be read, got one that throws when read (Error: reading [1])');
    const ttl = await failure(() => log.keys.create(['customer', 2], { ttl: loose(throwing('days')) }));
    expect((ttl as Error).message).toBe('options.ttl.days: expected a value that can be read, got one that throws when read (Error: reading days)');
  });
});
