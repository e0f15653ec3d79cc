import { describe, expect, it } from 'vitest';
import {
  CoherenceError,
  InvalidArgumentError,
  InvalidEventError,
  type AppendOptions,
  type Identity,
  type Log,
  type NewEvent,
  type Operation,
} from '../../src/index.ts';
import { action, allEvents, effect, type LogOptions } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const book: Identity = ['book', 'Neuromancer'];
const key: Identity = ['key', 'alice'];

/** Lets tests hand the log what its types would not allow. */
const loose = <T>(value: unknown): T => value as T;

async function snapshot(log: Log) {
  return { head: await log.head(), events: await allEvents(log), state: await log.state(book) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => { throw new Error('expected a rejection, got a result'); }, (e: unknown) => e);
}

const good = (n: number): NewEvent => action(book, [{ op: 'replace', path: '/title', value: `v${n}` }]);

class Money {
  constructor(readonly cents: number) {}
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export function validation(engine: TestEngine): void {
  async function populated(options: LogOptions = {}): Promise<Log> {
    const { log } = await engine.tempLog({ clock, ...options });
    const first = await log.append([
      action(book, [{ op: 'add', path: '/title', value: 'Neuromancer' }], { triggers: [key] }),
      action(['book', 'Count Zero'], [{ op: 'add', path: '/stock', value: 1 }]),
    ], { base: 0 });
    const second = await log.append([effect(key)], { base: 2 });
    expect([first.status, second.status]).toEqual(['ok', 'ok']);
    return log;
  }

  /**
   * Appends a batch with `bad` at index 2 to a populated log, checks the InvalidEventError it
   * throws and that the store is exactly as before.
   */
  async function expectInvalidEvent(bad: unknown, path: string, message: RegExp, options: LogOptions = {}) {
    const log = await populated(options);
    const before = await snapshot(log);
    const error = await rejection(log.append(loose<NewEvent[]>([good(1), good(2), bad, good(3)]), { base: 3 }));
    expect(error).toBeInstanceOf(InvalidEventError);
    expect(error).toBeInstanceOf(CoherenceError);
    expect(error).toMatchObject({ code: 'INVALID_EVENT', index: 2, path });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(`events[2]${path === '' ? '' : `.${path}`}: `)).toBe(true);
    expect(await snapshot(log)).toEqual(before);
    // The same batch without the bad event goes through: the error was about that event alone.
    expect((await log.append([good(1), good(2), good(3)], { base: 3 })).status).toBe('ok');
  }

  /** Like expectInvalidEvent for a bad operation inside an otherwise good action at index 2. */
  async function expectInvalidOperation(op: unknown, path: string, message: RegExp) {
    await expectInvalidEvent(action(book, loose<Operation[]>([{ op: 'add', path: '/ok', value: 1 }, op])), `action.patch[1]${path}`, message);
  }

  async function expectInvalidOptions(options: unknown, message: RegExp) {
    const log = await populated();
    const before = await snapshot(log);
    const error = await rejection(log.append([good(1)], loose<AppendOptions>(options)));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toBeInstanceOf(CoherenceError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((error as Error).message).toMatch(message);
    expect(await snapshot(log)).toEqual(before);
  }

  describe('invalid identities', () => {
    it('refuses an aggregate that is not an array', async () => {
      await expectInvalidEvent(action(loose<Identity>('book:Neuromancer'), [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate', /expected an identity \[kind, id\], got "book:Neuromancer"/);
    });

    it('refuses an identity with one element', async () => {
      await expectInvalidEvent(action(loose<Identity>(['book']), [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate', /expected an identity \[kind, id\], got an array/);
    });

    it('refuses an identity with three elements', async () => {
      await expectInvalidEvent(action(book, [{ op: 'add', path: '/a', value: 1 }], { actor: loose<Identity>(['user', 'alice', 'admin']) }), 'action.actor', /expected an identity \[kind, id\], got an array/);
    });

    it('refuses an empty kind', async () => {
      await expectInvalidEvent(action(['', 'Neuromancer'], [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate[0]', /expected a non-empty string, got ""/);
    });

    it('refuses an empty id', async () => {
      await expectInvalidEvent(action(['book', ''], [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate[1]', /expected a non-empty string, got ""/);
    });

    it('refuses a numeric id that is not a safe integer', async () => {
      await expectInvalidEvent(action(['book', 2 ** 53], [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate[1]', /expected a safe integer id, got 9007199254740992/);
    });

    it('refuses a fractional id', async () => {
      await expectInvalidEvent(action(['book', 1.5], [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate[1]', /expected a safe integer id, got 1\.5/);
    });

    it('refuses a NaN id', async () => {
      await expectInvalidEvent(action(['book', Number.NaN], [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate[1]', /expected a safe integer id, got NaN/);
    });

    it('refuses an id that is neither a string nor a number', async () => {
      await expectInvalidEvent(action(loose<Identity>(['book', true]), [{ op: 'add', path: '/a', value: 1 }]), 'action.aggregate[1]', /expected a non-empty string or a safe integer id, got true/);
    });

    it('refuses an invalid actor', async () => {
      await expectInvalidEvent(action(book, [{ op: 'add', path: '/a', value: 1 }], { actor: ['user', ''] }), 'action.actor[1]', /expected a non-empty string, got ""/);
    });

    it('refuses an invalid trigger', async () => {
      await expectInvalidEvent(action(book, [{ op: 'add', path: '/a', value: 1 }], { triggers: [key, ['', 'x']] }), 'triggers[1][0]', /expected a non-empty string, got ""/);
    });

    it('refuses an invalid effect trigger', async () => {
      await expectInvalidEvent(effect(loose<Identity>(['key'])), 'effect.trigger', /expected an identity \[kind, id\], got an array/);
    });
  });

  describe('invalid reason and source', () => {
    it('refuses an empty action reason', async () => {
      await expectInvalidEvent(action(book, [{ op: 'add', path: '/a', value: 1 }], { reason: '' }), 'action.reason', /expected a non-empty string, got ""/);
    });

    it('refuses an empty effect reason', async () => {
      await expectInvalidEvent(effect(key, ''), 'effect.reason', /expected a non-empty string, got ""/);
    });

    it('refuses an empty source', async () => {
      await expectInvalidEvent({ ...action(book, [{ op: 'add', path: '/a', value: 1 }]), source: '' }, 'source', /expected a non-empty string, got ""/);
    });

    it('refuses a missing source', async () => {
      const { source: _, ...sourceless } = effect(key);
      await expectInvalidEvent(sourceless, 'source', /expected a non-empty string, got undefined/);
    });
  });

  describe('malformed patches', () => {
    it('refuses an unknown op', async () => {
      await expectInvalidOperation({ op: 'merge', path: '/a', value: 1 }, '.op', /expected one of add, remove, replace, move, copy, test, got "merge"/);
    });

    it('refuses an add without a value', async () => {
      await expectInvalidOperation({ op: 'add', path: '/a' }, '.value', /expected a value for "add", got none/);
    });

    it('refuses a replace without a value', async () => {
      await expectInvalidOperation({ op: 'replace', path: '/a' }, '.value', /expected a value for "replace", got none/);
    });

    it('refuses a path without a leading "/"', async () => {
      await expectInvalidOperation({ op: 'add', path: 'stock', value: 1 }, '.path', /expected a JSON Pointer starting with "\/", got "stock"/);
    });

    it('refuses a path that is not a string', async () => {
      await expectInvalidOperation({ op: 'add', path: 3, value: 1 }, '.path', /expected a JSON Pointer string, got 3/);
    });

    it('refuses a "~" that is not escaped as ~0 or ~1', async () => {
      await expectInvalidOperation({ op: 'add', path: '/a~2b', value: 1 }, '.path', /expected "~" to be escaped as "~0" or "~1", got "\/a~2b"/);
    });

    it('refuses a move without from', async () => {
      await expectInvalidOperation({ op: 'move', path: '/b' }, '.from', /expected a JSON Pointer string, got undefined/);
    });

    it('refuses a move into its own child', async () => {
      await expectInvalidOperation({ op: 'move', from: '/a', path: '/a/b' }, '.from', /expected "from" not to contain "path".*got "\/a"/);
    });

    it('refuses an operation that is not an object', async () => {
      await expectInvalidOperation('add /a 1', '', /expected an operation object, got "add \/a 1"/);
    });

    it('refuses an empty patch', async () => {
      await expectInvalidEvent(action(book, []), 'action.patch', /expected a non-empty array of operations, got an empty array/);
    });

    it('refuses a patch that is not an array', async () => {
      await expectInvalidEvent(action(book, loose<Operation[]>({ op: 'add', path: '/a', value: 1 })), 'action.patch', /expected a non-empty array of operations, got an object/);
    });
  });

  describe('pointers that could reach a prototype', () => {
    it.each(['__proto__', 'constructor', 'prototype'])('refuses a "%s" segment in a path', async (segment) => {
      const path = `/shelf/${segment}/polluted`;
      await expectInvalidOperation({ op: 'add', path, value: true }, '.path', new RegExp(`expected no "${segment}" segment.*got "${path.replaceAll('/', '\\/')}"`));
    });

    it.each(['__proto__', 'constructor', 'prototype'])('refuses a "%s" segment in a from', async (segment) => {
      const from = `/${segment}`;
      await expectInvalidOperation({ op: 'copy', from, path: '/copied' }, '.from', new RegExp(`expected no "${segment}" segment.*got "\\/${segment}"`));
    });

    it('refuses a value with a "__proto__" key', async () => {
      await expectInvalidOperation({ op: 'add', path: '/a', value: JSON.parse('{"nested":{"__proto__":{"polluted":true}}}') }, '.value.nested.__proto__', /expected no "__proto__" key/);
    });

    it('makes prototype pollution through a patch impossible', async () => {
      const log = await populated();
      const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
      const attempts: Operation[][] = [
        [{ op: 'add', path: '/__proto__/polluted', value: true }],
        [{ op: 'add', path: '/constructor/prototype/polluted', value: true }],
        [{ op: 'replace', path: '/a/__proto__/polluted', value: true }],
        [{ op: 'copy', from: '/__proto__', path: '/copied' }],
        [{ op: 'move', from: '/constructor', path: '/moved' }],
        [{ op: 'add', path: '', value: JSON.parse('{"__proto__":{"polluted":true}}') }],
      ];
      for (const patch of attempts) {
        await expect(log.append([action(book, patch)], { base: 3 })).rejects.toThrow(InvalidEventError);
      }
      // Valid data folded into state, including keys that look like the forbidden ones.
      const ok = await log.append([action(book, [
        { op: 'add', path: '/proto', value: { polluted: false } },
        { op: 'add', path: '/__proto', value: 1 },
        { op: 'add', path: '/a', value: { constructors: [1], prototypes: {} } },
      ])], { base: 3 });
      expect(ok.status).toBe('ok');
      const { state } = await log.state(book);
      expect(state).toEqual({ title: 'Neuromancer', proto: { polluted: false }, __proto: 1, a: { constructors: [1], prototypes: {} } });
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
      expect(loose<Record<string, unknown>>({}).polluted).toBeUndefined();
      expect('polluted' in Object.prototype).toBe(false);
    });
  });

  describe('values that are not JSON', () => {
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    it.each([
      ['a function', () => 1, '', /expected a JSON value, got a function/],
      ['undefined', undefined, '', /expected a JSON value, got undefined/],
      ['NaN', Number.NaN, '', /expected a JSON value, got NaN/],
      ['Infinity', Number.POSITIVE_INFINITY, '', /expected a JSON value, got Infinity/],
      ['-Infinity', Number.NEGATIVE_INFINITY, '', /expected a JSON value, got -Infinity/],
      ['a BigInt', 10n, '', /expected a JSON value, got a bigint/],
      ['a cycle', cycle, '.self', /expected a JSON value, got a cycle/],
      ['a Date', new Date('2024-01-01T00:00:00Z'), '', /expected a JSON value, got a Date/],
      ['a class instance', new Money(100), '', /expected a JSON value, got an instance of Money/],
      ['a Map', new Map([['a', 1]]), '', /expected a JSON value, got an instance of Map/],
      ['a Symbol', Symbol('s'), '', /expected a JSON value, got a symbol/],
      ['undefined deep inside', { a: [1, { b: undefined }] }, '.a[1].b', /expected a JSON value, got undefined/],
    ] as [string, unknown, string, RegExp][])('refuses %s as a value', async (_, value, path, message) => {
      await expectInvalidOperation({ op: 'add', path: '/price', value }, `.value${path}`, message);
    });

    it('accepts the same value shared twice when it is not a cycle', async () => {
      const log = await populated();
      const shared = { currency: 'EUR' };
      const result = await log.append([action(book, [{ op: 'add', path: '/prices', value: { a: shared, b: shared } }])], { base: 3 });
      expect(result.status).toBe('ok');
    });
  });

  describe('other bad events', () => {
    it('refuses an event over maxEventBytes', async () => {
      await expectInvalidEvent(action(book, [{ op: 'add', path: '/blurb', value: 'x'.repeat(1000) }]), '', /expected an event of at most 300 bytes.*got \d+ bytes/, { maxEventBytes: 300 });
    });

    it('refuses by default an event over 1 MiB, and takes one under it', async () => {
      const log = await populated();
      const under = action(book, [{ op: 'add', path: '/blurb', value: 'x'.repeat(1024 * 1024 - 1000) }]);
      const over = action(book, [{ op: 'add', path: '/blurb', value: 'x'.repeat(1024 * 1024) }]);
      const error = await rejection(log.append([over], { base: 3 }));
      expect(error).toBeInstanceOf(InvalidEventError);
      expect((error as Error).message).toMatch(/expected an event of at most 1048576 bytes/);
      expect(await log.head()).toBe(3);
      expect((await log.append([under], { base: 3 })).status).toBe('ok');
    });

    it('accepts an event of exactly maxEventBytes and refuses one byte more', async () => {
      const big = action(book, [{ op: 'add', path: '/blurb', value: 'x'.repeat(1000) }]);
      const probe = await populated({ maxEventBytes: 300 });
      const error = await rejection(probe.append([big], { base: 3 }));
      const size = Number(/got (\d+) bytes/.exec((error as Error).message)?.[1]);
      expect(size).toBeGreaterThan(1000);
      const exact = await populated({ maxEventBytes: size });
      expect((await exact.append([big], { base: 3 })).status).toBe('ok');
      const under = await populated({ maxEventBytes: size - 1 });
      await expect(under.append([big], { base: 3 })).rejects.toThrow(InvalidEventError);
      expect(await under.head()).toBe(3);
    });

    it('refuses duplicate triggers', async () => {
      await expectInvalidEvent(action(book, [{ op: 'add', path: '/a', value: 1 }], { triggers: [key, ['consent', 'alice'], ['key', 'alice']] }), 'triggers[2]', /expected no duplicate, got \["key","alice"\] twice/);
    });

    it('refuses an effect with no trigger', async () => {
      await expectInvalidEvent({ source: 'test', effect: { reason: 'shredded' } }, 'effect.trigger', /expected the trigger identity the effect is about, got none/);
    });

    it('refuses an event that is both an action and an effect', async () => {
      await expectInvalidEvent({ ...action(book, [{ op: 'add', path: '/a', value: 1 }]), effect: { reason: 'shredded', trigger: key } }, '', /expected exactly one of "action" or "effect", got both/);
    });

    it('refuses an event that is neither an action nor an effect', async () => {
      await expectInvalidEvent({ source: 'test' }, '', /expected exactly one of "action" or "effect", got neither/);
    });

    it('refuses an action on an aggregate whose kind starts with "$", which belong to coherence itself', async () => {
      const log = await populated();
      const before = await snapshot(log);
      const error = await rejection(log.append([good(1), action(['$process', 'fulfilment'], [{ op: 'add', path: '/a', value: 1 }])], { base: 3 }));
      expect(error).toBeInstanceOf(InvalidEventError);
      expect(error).toMatchObject({ code: 'INVALID_EVENT', index: 1 });
      expect((error as InvalidEventError).path).toMatch(/^action\.aggregate/);
      expect(await snapshot(log)).toEqual(before);
      // Only the kind's first character counts.
      expect((await log.append([action(['book$', 1], [{ op: 'add', path: '/a', value: 1 }])], { base: 3 })).status).toBe('ok');
    });

    it('refuses an event that is not an object', async () => {
      await expectInvalidEvent(null, '', /expected an event object, got null/);
    });

    it('refuses an invalid Date as timestamp', async () => {
      await expectInvalidEvent({ ...effect(key), timestamp: new Date('not a date') }, 'timestamp', /expected a valid Date, got Invalid Date/);
    });

    it('refuses a timestamp that is not a Date', async () => {
      await expectInvalidEvent({ ...effect(key), timestamp: '2024-05-01' }, 'timestamp', /expected a Date, got "2024-05-01"/);
    });

    it('refuses an unknown property on an event', async () => {
      await expectInvalidEvent({ ...effect(key), colour: 'red' }, 'colour', /unknown property/);
    });

    it('refuses an unknown property on an action', async () => {
      const event = action(book, [{ op: 'add', path: '/a', value: 1 }]);
      await expectInvalidEvent({ ...event, action: { ...event.action, aggregates: [book] } }, 'action.aggregates', /expected one of reason, actor, aggregate, patch, got an unknown property/);
    });

    it('refuses an unknown property on an effect', async () => {
      await expectInvalidEvent({ source: 'test', effect: { reason: 'shredded', trigger: key, triggers: [key] } }, 'effect.triggers', /expected one of reason, trigger, got an unknown property/);
    });

    it('accepts a member an operation does not define and stores the operation without it (RFC 6902 §4)', async () => {
      const log = await populated();
      const result = await log.append([action(book, loose<Operation[]>([{ op: 'add', path: '/a', value: 1, force: true }]))], { base: 3 });
      expect(result.status).toBe('ok');
      expect((await log.get(4))).toMatchObject({ action: { patch: [{ op: 'add', path: '/a', value: 1 }] } });
      expect(JSON.stringify(await log.get(4))).not.toContain('force');
    });

    it('refuses an effect-only property on an action', async () => {
      await expectInvalidEvent({ ...action(book, [{ op: 'add', path: '/a', value: 1 }]), trigger: key }, 'trigger', /unknown property/);
    });
  });

  describe('bad batches and options', () => {
    it('refuses an empty batch', async () => {
      const log = await populated();
      const before = await snapshot(log);
      const error = await rejection(log.append([], { base: 3 }));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((error as Error).message).toMatch(/events: expected a non-empty array of events, got an empty array/);
      expect(await snapshot(log)).toEqual(before);
    });

    it('refuses a batch that is not an array', async () => {
      const log = await populated();
      const before = await snapshot(log);
      const error = await rejection(log.append(loose<NewEvent[]>(good(1)), { base: 3 }));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/events: expected a non-empty array of events, got an object/);
      expect(await snapshot(log)).toEqual(before);
    });

    it('refuses a negative base', async () => {
      await expectInvalidOptions({ base: -1 }, /options\.base: expected an integer >= 0, got -1/);
    });

    it('refuses a fractional base', async () => {
      await expectInvalidOptions({ base: 1.5 }, /options\.base: expected an integer >= 0, got 1\.5/);
    });

    it('refuses a missing base', async () => {
      await expectInvalidOptions({}, /options\.base: expected an integer >= 0, got undefined/);
    });

    it('refuses a base that is not a number', async () => {
      await expectInvalidOptions({ base: '3' }, /options\.base: expected an integer >= 0, got "3"/);
    });

    it('refuses duplicate resolved seqs', async () => {
      await expectInvalidOptions({ base: 1, resolved: [2, 3, 2] }, /options\.resolved\[2\]: expected no duplicate, got 2 twice/);
    });

    it('refuses a zero resolved seq', async () => {
      await expectInvalidOptions({ base: 1, resolved: [0] }, /options\.resolved\[0\]: expected an integer >= 1, got 0/);
    });

    it('refuses a negative resolved seq', async () => {
      await expectInvalidOptions({ base: 1, resolved: [2, -3] }, /options\.resolved\[1\]: expected an integer >= 1, got -3/);
    });

    it('refuses an unknown merge mode', async () => {
      await expectInvalidOptions({ base: 3, merge: 'theirs-wins' }, /options\.merge: expected "none" or "disjoint-paths", got "theirs-wins"/);
    });

    it('refuses a dryRun that is not a boolean', async () => {
      await expectInvalidOptions({ base: 3, dryRun: 'yes' }, /options\.dryRun: expected a boolean, got "yes"/);
    });

    it('refuses an unknown append option', async () => {
      await expectInvalidOptions({ base: 3, force: true }, /options\.force: .*unknown property/);
    });

    it('refuses an unknown read option', async () => {
      const log = await populated();
      const read = async () => { for await (const _ of log.read(loose<undefined>({ form: 2 }))) { /* nothing */ } };
      const error = await rejection(read());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/options\.form: .*unknown property/);
    });

    it('refuses a read from 0', async () => {
      const log = await populated();
      const read = async () => { for await (const _ of log.read({ from: 0 })) { /* nothing */ } };
      const error = await rejection(read());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/options\.from: expected an integer >= 1, got 0/);
    });

    it('refuses an unknown openLog option', async () => {
      const { reopen } = await engine.tempLog({ clock });
      const error = await rejection(reopen(loose<LogOptions>({ maxEventByte: 10 })));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((error as Error).message).toMatch(/options\.maxEventByte: expected one of .*got an unknown option/);
    });

    it('refuses an invalid maxEventBytes', async () => {
      const { reopen } = await engine.tempLog({ clock });
      const error = await rejection(reopen({ maxEventBytes: 0 }));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/options\.maxEventBytes: expected a positive integer, got 0/);
    });

    it('refuses a negative base given to conflicts, naming the argument', async () => {
      const log = await populated();
      const error = await rejection(log.conflicts(-1, book));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toBe('base: expected an integer >= 0, got -1');
    });

    it('refuses an invalid aggregate given to conflicts, naming the argument', async () => {
      const log = await populated();
      const error = await rejection(log.conflicts(0, loose<Identity>(['book'])));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toBe('aggregate: expected an identity [kind, id], got an array');
    });

    it('refuses an invalid aggregate given to state, naming the argument and the element', async () => {
      const log = await populated();
      const error = await rejection(log.state(loose<Identity>(['', 'x'])));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toBe('aggregate[0]: expected a non-empty string, got ""');
    });

    it('refuses a seq given to get that is not a positive integer, naming the argument', async () => {
      const log = await populated();
      const error = await rejection(log.get(-2));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((error as Error).message).toBe('seq: expected an integer >= 1, got -2');
    });
  });

  describe('arguments', () => {
    const batch = (): NewEvent[] => [
      action(book, [{ op: 'add', path: '/prices', value: { eur: 10, history: [9, 8] } }, { op: 'move', from: '/title', path: '/name' }], { triggers: [['consent', 'alice']] }),
      { ...effect(key), timestamp: new Date('2024-01-01T00:00:00Z') },
      action(['book', 'Count Zero'], [{ op: 'test', path: '/stock', value: 1 }]),
    ];

    it('does not mutate the events or the options of an append', async () => {
      const log = await populated();
      const events = batch();
      const options: AppendOptions = { base: 1, resolved: [2], merge: 'disjoint-paths' };
      const copy = structuredClone({ events, options });
      deepFreeze(events);
      deepFreeze(options);
      const dry = await log.append(events, { ...options, dryRun: true });
      const conflict = await log.append(events, options);
      expect(conflict).toEqual(dry);
      expect(conflict.status).toBe('conflict');
      const written = await log.append(events, { base: 3 });
      expect(written.status).toBe('ok');
      expect({ events, options }).toEqual(copy);
    });

    it('does not mutate the options of a read', async () => {
      const log = await populated();
      const options = deepFreeze({ from: 2, aggregates: [book], kinds: ['book'] });
      const read = [];
      for await (const event of log.read(options)) read.push(event.seq);
      expect(read).toEqual([1, 3]);
      expect(options).toEqual({ from: 2, aggregates: [book], kinds: ['book'] });
    });

    it('returns the events it stored, even when the caller changes its objects before the append settles', async () => {
      const log = await populated();
      const value = { eur: 10 };
      const pending = log.append([action(book, [{ op: 'add', path: '/price', value }])], { base: 3 });
      value.eur = 99;
      const result = await pending;
      expect(result.status).toBe('ok');
      if (result.status !== 'ok') return;
      expect(result.events).toEqual([await log.get(4)]);
      expect(await log.get(4)).toMatchObject({ action: { patch: [{ value: { eur: 10 } }] } });
    });
  });
}
