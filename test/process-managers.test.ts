/**
 * Process managers (SPEC 11): the state, the commands' actions and the handled mark in one
 * append; conflicts decided again; rejections recorded or stopping the manager; inherited
 * triggers and sealed states that a shred reaches; effects; bad arguments.
 */
import { describe, expect, it } from 'vitest';
import {
  createCommandService,
  createProcessManager,
  decider,
  InvalidArgumentError,
  ProcessError,
  RejectedError,
  type ActionEvent,
  type CommandService,
  type Identity,
  type Log,
  type LogEvent,
  type ProcessManagerOptions,
} from '../src/index.ts';
import { appendOk, filesContaining, newMasterKey, patchOf, rejection } from './support/crypto-fixtures.ts';
import { effectsBySeq, fulfilment, appendWorkload, reserve, ship, type OrderState } from './support/reaction-fixtures.ts';
import { action, allEvents, effect, tempLog } from './support/temp-log.ts';

const alice: Identity = ['customer', 'alice'];
const fast = { retry: { attempts: 3, minDelayMs: 0, maxDelayMs: 0 } };

interface Order {
  status?: string;
  email?: string;
  seen: number;
  erased?: boolean;
}

const paid = (order: number, sku: number, extra: { email?: string; key?: Identity } = {}) => action(['order', order], [
  { op: 'add', path: '/sku', value: sku },
  ...(extra.email === undefined ? [] : [{ op: 'add' as const, path: '/email', value: extra.email }]),
], { reason: 'paid', ...(extra.key === undefined ? {} : { encrypt: { key: extra.key, paths: ['/email'] } }) });

const stock = (sku: number, count: number) => action(['stock', sku], [{ op: 'add', path: '/count', value: count }, { op: 'add', path: '/by', value: [] }], { reason: 'stocked' });

/** A manager on orders: a payment reserves its sku and asks for shipping (a second command). */
function orders(log: Log, commands: CommandService, more: Partial<ProcessManagerOptions<Order>> = {}) {
  const reacted: { seq: number; state: Order; event: LogEvent }[] = [];
  const manager = createProcessManager<Order>(log, 'orders', {
    kinds: ['order'],
    instance: (event) => ('action' in event ? (event.action.aggregate[1] as number) : undefined),
    init: () => ({ seen: 0 }),
    react(current, event) {
      reacted.push({ seq: event.seq, state: current, event });
      // A state whose key was shredded reads as the redact value: start over, noting it.
      const state: Order = typeof current === 'object' && current !== null ? current : { seen: 0, erased: true };
      if (!('action' in event) || event.action.reason !== 'paid') return { state: { ...state, seen: state.seen + 1 } };
      const order = event.action.aggregate[1] as number;
      const sku = (event.action.patch[0] as { value: number }).value;
      const email = event.action.patch[1] as { value: string } | undefined;
      const next: Order = { ...state, status: 'reserving', seen: state.seen + 1 };
      if (email !== undefined) next.email = email.value;
      return { state: next, commands: [{ name: 'reserve', command: { sku, order, seq: event.seq } }, { name: 'ship', command: { order, seq: event.seq } }] };
    },
    commands,
    ...more,
  });
  return { manager, reacted };
}

async function shop(options: Parameters<typeof tempLog>[0] = {}) {
  const { log, path, reopen } = await tempLog({ masterKey: newMasterKey(), ...options });
  const commands = createCommandService(log, { deciders: [reserve, ship], ...fast });
  return { log, path, reopen, commands };
}

describe('a process manager', () => {
  it('appends the new state, every command\'s actions and the handled mark together, and moves on', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [stock(1, 5), paid(7, 1)]);
    const { manager } = orders(log, commands);
    expect(await manager.catchUp()).toEqual({ from: 1, to: 2, events: 1, commands: 2 });
    const written = (await allEvents(log)).slice(2) as ActionEvent[];
    // One batch: the state, the reservation, the shipment, seqs 3 to 5.
    expect(written.map((e) => [e.seq, e.action.aggregate, e.action.reason])).toEqual([
      [3, ['$process', 'orders:7'], 'reacted'],
      [4, ['stock', 1], 'reserved'],
      [5, ['shipment', 7], 'requested'],
    ]);
    expect(written.every((e) => e.timestamp.getTime() === written[0]?.timestamp.getTime())).toBe(true);
    expect(written[1]?.action.actor).toEqual(['$process', 'orders']);
    expect(written[1]?.source).toBe('process:orders');
    expect(await manager.get(7)).toEqual({ status: 'reserving', seen: 1 });
    expect(await manager.get(8)).toBeUndefined();
    expect((await log.state(['stock', 1])).state).toEqual({ count: 4, by: [2] });
    // The handled mark is the idempotency key: the same batch again is a duplicate.
    const again = await log.append([action(['order', 7], [{ op: 'add', path: '/x', value: 1 }])], { base: await log.head(), idempotencyKey: '$process:orders:2' });
    expect(again.status).toBe('duplicate');
    // The catch-up went up to the head it started at; the next one reads past what it wrote.
    expect(await manager.position()).toBe(2);
    expect(await manager.catchUp()).toEqual({ from: 3, to: 5, events: 0, commands: 0 });
  });

  it('decides the commands of one event one after the other, each on the states with the actions of those before it', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [stock(1, 2)]);
    const manager = createProcessManager<object>(log, 'twice', {
      kinds: ['order'],
      instance: () => 'all',
      init: () => ({}),
      react: (state, event) => ({ state, commands: [1, 2, 3].map((n) => ({ name: 'reserve', command: { sku: 1, order: n, seq: event.seq } })) }),
      commands,
    });
    await appendOk(log, [paid(1, 1)]);
    await manager.catchUp();
    expect((await log.state(['stock', 1])).state).toEqual({ count: 0, by: [2, 2] });
    expect([...await collect(manager.rejections())]).toEqual([{ seq: 2, instance: 'all', name: 'reserve', reason: 'out-of-stock' }]);
  });

  it('hands effects to react, and leaves to itself the events no instance claims and coherence\'s own', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [action(['order', 1], [{ op: 'add', path: '/a', value: 1 }], { triggers: [['promo', 1]] }), effect(['promo', 1], 'withdrawn'), action(['order', 2], [{ op: 'add', path: '/a', value: 1 }])]);
    const seen: number[] = [];
    const manager = createProcessManager<object>(log, 'watch', {
      instance: (event) => ('effect' in event ? 'effects' : event.action.aggregate[1] === 1 ? 'one' : undefined),
      init: () => ({}),
      react(state, event) {
        seen.push(event.seq);
        return { state: { last: event.seq } };
      },
      commands,
    });
    expect(await manager.catchUp()).toMatchObject({ from: 1, to: 3, events: 2 });
    expect(seen).toEqual([1, 2]);
    expect(await manager.get('effects')).toEqual({ last: 2 });
    // Its own state actions ($process) came after: the next catch-up reads them and ignores them.
    expect(await manager.catchUp()).toMatchObject({ events: 0 });
    expect(seen).toEqual([1, 2]);
  });

  it('gives actions a command writes because of an event that event\'s triggers, and the state action too', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [stock(1, 5), paid(7, 1, { email: 'alice@example.org', key: alice })]);
    const { manager } = orders(log, commands);
    await manager.catchUp();
    const written = (await allEvents(log)).slice(2) as ActionEvent[];
    expect(written.map((e) => e.triggers)).toEqual([[alice], [alice], [alice]]);
  });

  it('decides a command again on fresh states when another writer got in between, and appends it once', async () => {
    const { log, reopen } = await shop();
    const other = await reopen();
    let raced = false;
    const racy = decider<{ sku: number; order: number; seq: number }>({
      name: 'reserve',
      aggregates: ({ sku }) => [['stock', sku]],
      async decide(command, states, context) {
        if (!raced) {
          raced = true;
          await appendOk(other, [action(['stock', command.sku], [{ op: 'replace', path: '/count', value: 1 }], { reason: 'recount' })]);
        }
        return reserve.decide(command, states, context);
      },
    });
    const commands = createCommandService(log, { deciders: [racy, ship], ...fast });
    await appendOk(log, [stock(1, 5), paid(7, 1)]);
    const { manager, reacted } = orders(log, commands);
    expect(await manager.catchUp()).toMatchObject({ events: 1, commands: 2 });
    expect((await log.state(['stock', 1])).state).toEqual({ count: 0, by: [2] });
    // The instance did not change: react ran once; only the command was decided again.
    expect(reacted.map((r) => r.seq)).toEqual([2]);
    const { reserved } = await effectsBySeq(log, fulfilment(log));
    expect(reserved).toEqual(new Map([[2, 1]]));
  });

  it('reacts again on the fresh state when its own instance changed in between (a shred of the event\'s key), to the event read afresh', async () => {
    const { log } = await shop({ redact: () => '[erased]' });
    let shredded = false;
    // Shreds the key of the event after react has read it, before the manager appends.
    const shredding = decider<{ sku: number; order: number; seq: number }>({
      name: 'reserve',
      aggregates: ({ sku }) => [['stock', sku]],
      async decide(command, states, context) {
        if (!shredded) {
          shredded = true;
          await log.keys.shred(alice);
        }
        return reserve.decide(command, states, context);
      },
    });
    const commands = createCommandService(log, { deciders: [shredding, ship], ...fast });
    await appendOk(log, [stock(1, 5), paid(7, 1, { email: 'alice@example.org', key: alice })]);
    const { manager, reacted } = orders(log, commands);
    await manager.catchUp();
    expect(reacted.map((r) => [r.seq, (r.event as ActionEvent).action.patch[1]])).toEqual([
      [2, { op: 'add', path: '/email', value: 'alice@example.org' }],
      [2, { op: 'add', path: '/email', value: '[erased]' }],
    ]);
    expect(await manager.get(7)).toEqual({ status: 'reserving', email: '[erased]', seen: 1 });
    const { reserved } = await effectsBySeq(log, fulfilment(log));
    expect(reserved).toEqual(new Map([[2, 1]]));
  });

  it('records a rejected command with the seq and the reason, in the same append as the rest, and moves on', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [stock(1, 1), paid(7, 1), paid(8, 1), paid(9, 2)]);
    const { manager } = orders(log, commands);
    expect(await manager.catchUp()).toMatchObject({ from: 1, to: 4, events: 3, commands: 4 });
    expect(await collect(manager.rejections())).toEqual([
      { seq: 3, instance: 8, name: 'reserve', reason: 'out-of-stock' },
      { seq: 4, instance: 9, name: 'reserve', reason: 'out-of-stock' },
    ]);
    // The rejection is in the batch of its event (seqs 8 to 10), with the state and the shipment.
    const batch = (await allEvents(log)).slice(7, 10) as ActionEvent[];
    expect(batch.map((e) => [e.seq, e.action.aggregate])).toEqual([[8, ['$process', 'orders:8']], [9, ['shipment', 8]], [10, ['$process', 'orders']]]);
    // Position: the head the catch-up started at (what it wrote itself came after).
    expect((await log.stats()).processManagers).toEqual([{ name: 'orders', position: 4, lag: 9, rejections: 2 }]);
    expect((await log.stats()).projections).toEqual([]);
  });

  it("with onRejected 'stop', stops before the event whose command is refused, and goes on once the decider accepts it", async () => {
    const { log, commands } = await shop();
    await appendOk(log, [stock(1, 1), paid(7, 1), paid(8, 1), paid(9, 2)]);
    const { manager } = orders(log, commands, { onRejected: 'stop' });
    const stopped = await manager.catchUp();
    expect(stopped).toEqual({ from: 1, to: 2, events: 1, commands: 2, stopped: { seq: 3, instance: 8, name: 'reserve', reason: 'out-of-stock' } });
    expect(await manager.position()).toBe(2);
    expect(await manager.get(8)).toBeUndefined();
    expect((await log.state(['shipment', 8])).state).toEqual({});
    expect(await manager.catchUp()).toMatchObject({ to: 2, stopped: { seq: 3 } });
    await appendOk(log, [action(['stock', 1], [{ op: 'replace', path: '/count', value: 1 }], { reason: 'restocked' }), action(['stock', 2], [{ op: 'add', path: '/count', value: 1 }, { op: 'add', path: '/by', value: [] }], { reason: 'stocked' })]);
    const resumed = await manager.catchUp();
    expect(resumed).toMatchObject({ from: 3, events: 2, commands: 4 });
    expect(resumed.stopped).toBeUndefined();
    expect(await manager.get(8)).toEqual({ status: 'reserving', seen: 1 });
    expect(await collect(manager.rejections())).toEqual([]);
  });

  it('keeps the state sealed under the keys of the events folded into it: a shred redacts it for readers, no file holds it after compact, and projections replay what its commands wrote', async () => {
    const secret = 'alice-7f3a9@example.org';
    const { log, path, commands } = await shop({ redact: () => '[erased]' });
    await appendOk(log, [stock(1, 5), paid(7, 1, { email: secret, key: alice })]);
    const { manager } = orders(log, commands);
    await manager.catchUp();
    expect(await manager.get(7)).toEqual({ status: 'reserving', email: secret, seen: 1 });
    const raw: LogEvent[] = [];
    for await (const event of log.read({ raw: true, aggregates: [['$process', 'orders:7']] })) raw.push(event);
    expect(patchOf(raw[0])[0]?.value).toMatchObject({ envelope: 'xchacha20-poly1305', key: alice });
    const shipments = log.projection('shipments', { kinds: ['shipment', 'stock'] });
    await shipments.catchUp();

    await log.keys.shred(alice);
    expect(await manager.get(7)).toBe('[erased]');
    expect(patchOf(await log.get(3))[0]).toEqual({ op: 'add', path: '/state', value: '[erased]' });
    // The shred affects what the commands wrote (they inherited the trigger): projections replay
    // stock 1 (stocked, reserved) and shipment 7.
    expect(await shipments.catchUp()).toMatchObject({ replayed: 3 });
    // The next event of the instance reacts to the redacted state, sealed under no dead key.
    await appendOk(log, [paid(7, 1)]);
    await manager.catchUp();
    expect(await manager.get(7)).toEqual({ status: 'reserving', seen: 1, erased: true });
    const last: LogEvent[] = [];
    for await (const event of log.read({ raw: true, aggregates: [['$process', 'orders:7']] })) last.push(event);
    expect(patchOf(last.at(-1))[0]?.value).toEqual({ status: 'reserving', seen: 1, erased: true });
    await log.compact();
    expect(filesContaining(path, secret)).toEqual([]);
  });

  it('seals the state under every key folded into the instance so far, and no longer under one destroyed', async () => {
    const bob: Identity = ['customer', 'bob'];
    const { log, commands } = await shop({ redact: () => '[erased]' });
    await appendOk(log, [stock(1, 5), paid(7, 1, { email: 'alice@example.org', key: alice }), paid(7, 1, { email: 'bob@example.org', key: bob })]);
    const { manager } = orders(log, commands);
    await manager.catchUp();
    const raw = async () => {
      const found: LogEvent[] = [];
      for await (const event of log.read({ raw: true, aggregates: [['$process', 'orders:7']] })) if ('action' in event) found.push(event);
      return found.map((event) => patchOf(event)[0]?.value);
    };
    expect(await raw()).toEqual([
      expect.objectContaining({ envelope: 'xchacha20-poly1305', key: alice }),
      expect.objectContaining({ envelope: 'sealed', keys: [alice, bob] }),
    ]);
    expect(await manager.get(7)).toEqual({ status: 'reserving', email: 'bob@example.org', seen: 2 });
    await log.keys.shred(alice);
    expect(await manager.get(7)).toBe('[erased]');
    // The next change is sealed under what is left: nothing of the redacted state, the event's key.
    await appendOk(log, [paid(7, 1, { email: 'bob2@example.org', key: bob })]);
    await manager.catchUp();
    expect((await raw()).at(-1)).toEqual(expect.objectContaining({ envelope: 'xchacha20-poly1305', key: bob }));
    expect(await manager.get(7)).toEqual({ status: 'reserving', email: 'bob2@example.org', seen: 1, erased: true });
  });

  it('throws ProcessError when react throws, staying before that event; a fixed react goes on', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [stock(1, 5), paid(7, 1), paid(8, 1)]);
    let broken = true;
    const { manager } = orders(log, commands, {
      react(state, event) {
        if (broken && event.seq === 3) throw new Error('bug');
        return { state: { ...state, seen: state.seen + 1 } };
      },
    });
    const error = await rejection(manager.catchUp());
    expect(error).toBeInstanceOf(ProcessError);
    expect(error).toMatchObject({ code: 'PROCESS_FAILED', process: 'orders', seq: 3, message: 'process manager "orders" failed at event 3: react threw: bug' });
    expect(await manager.get(7)).toEqual({ seen: 1 });
    expect(await manager.position()).toBeLessThan(3);
    broken = false;
    await manager.catchUp();
    expect(await manager.get(8)).toEqual({ seen: 1 });
  });

  it('names a decider\'s bad intent in the decider\'s terms, inside a ProcessError', async () => {
    const { log } = await shop();
    const bad = decider<unknown>({ name: 'bad', aggregates: () => [['x', 1]], decide: () => [{ aggregate: ['x', 1], reason: 'r', patch: [{ op: 'add', path: 'nope', value: 1 }] }] });
    const commands = createCommandService(log, { deciders: [bad] });
    await appendOk(log, [paid(7, 1)]);
    const manager = createProcessManager<object>(log, 'p', { instance: () => 1, init: () => ({}), react: (s) => ({ state: s, commands: [{ name: 'bad', command: {} }] }), commands });
    const error = await rejection(manager.catchUp());
    expect(error).toBeInstanceOf(ProcessError);
    expect((error as Error).message).toContain('decider "bad": intents[0].patch[0].path: expected a JSON Pointer');
    expect(await log.head()).toBe(1);
  });

  it('follows: reacts at once to appends of this process, and to another process\'s', async () => {
    const { log, reopen, commands } = await shop();
    const other = await reopen();
    await appendOk(log, [stock(1, 5)]);
    const { manager } = orders(log, commands);
    const errors: unknown[] = [];
    const stop = manager.follow({ onError: (e) => errors.push(e) });
    await appendOk(log, [paid(7, 1)]);
    await until(async () => (await manager.get(7)) !== undefined);
    await appendOk(other, [paid(8, 1)]);
    await until(async () => (await manager.get(8)) !== undefined);
    await stop();
    expect(errors).toEqual([]);
    expect((await log.state(['stock', 1])).state).toEqual({ count: 3, by: [2, 6] });
  });

  it('takes each event once when two logs on the store run the same manager at once', async () => {
    const { log, reopen } = await shop();
    await appendWorkload(log, 600);
    const other = await reopen();
    const [a, b] = [fulfilment(log), fulfilment(other)];
    await Promise.all([a.catchUp(), b.catchUp(), a.catchUp()]);
    const { reserved, rejected } = await effectsBySeq(log, a);
    for (let seq = 501; seq <= 1100; seq++) expect((reserved.get(seq) ?? 0) + (rejected.get(seq) ?? 0), `seq ${seq}`).toBe(1);
  });

  it('refuses bad arguments with InvalidArgumentError, changing nothing', async () => {
    const { log, commands } = await shop();
    const ok: ProcessManagerOptions<object> = { instance: () => 1, init: () => ({}), react: (s) => ({ state: s }), commands };
    const { log: another } = await tempLog();
    const bad: [unknown, unknown, RegExp][] = [
      ['', ok, /^name: expected a non-empty string/],
      ['a:b', ok, /^name: expected no ":"/],
      [7, ok, /^name: expected a non-empty string/],
      ['p', null, /^options: expected/],
      ['p', { ...ok, instance: 1 }, /^options.instance: expected a function/],
      ['p', { ...ok, react: undefined }, /^options.react: expected a function/],
      ['p', { ...ok, onRejected: 'ignore' }, /^options.onRejected: expected "record" or "stop"/],
      ['p', { ...ok, kinds: 'order' }, /^options.kinds: expected an array/],
      ['p', { ...ok, from: 0 }, /^options.from: expected an integer >= 1/],
      ['p', { ...ok, extra: 1 }, /^options.extra: expected one of/],
      ['p', { ...ok, commands: {} }, /^options.commands: expected a command service/],
      ['p', { ...ok, commands: createCommandService(another, { deciders: [reserve] }) }, /^options.commands: expected a command service of the same log/],
    ];
    for (const [name, options, message] of bad) {
      expect(() => createProcessManager(log, name as string, options as ProcessManagerOptions<object>), String(message)).toThrow(InvalidArgumentError);
      expect(() => createProcessManager(log, name as string, options as ProcessManagerOptions<object>)).toThrow(message);
    }
    expect(() => createProcessManager({} as Log, 'p', ok)).toThrow(InvalidArgumentError);
    // Options that throw when read are bad input too, with what they threw as the cause.
    const boom = new Error('boom');
    const hostile = Object.defineProperty({ ...ok }, 'react', { enumerable: true, get() { throw boom; } });
    expect(() => createProcessManager(log, 'p', hostile)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', cause: boom }));
    const manager = createProcessManager(log, 'p', ok);
    for (const instance of ['', 1.5, null, {}]) await expect(manager.get(instance as string)).rejects.toThrow(InvalidArgumentError);
    expect(() => manager.follow({ onError: 1 } as never)).toThrow(/^options.onError: expected a function/);
    expect(await log.head()).toBe(0);
    expect((await log.stats()).processManagers).toEqual([]);
  });

  it('throws ProcessError when instance() returns an id that is not one', async () => {
    const { log, commands } = await shop();
    await appendOk(log, [paid(7, 1)]);
    const manager = createProcessManager<object>(log, 'p', { instance: () => ({}) as never, init: () => ({}), react: (s) => ({ state: s }), commands });
    await expect(manager.catchUp()).rejects.toThrow(/process manager "p" failed at event 1: instance\(event\): expected a non-empty string or a safe integer/);
    const notJson = createProcessManager<object>(log, 'q', { instance: () => 1, init: () => ({}), react: () => ({ state: { at: new Date() } }), commands });
    await expect(notJson.catchUp()).rejects.toThrow(/react returned a state that is not JSON at at: expected a JSON value, got a Date/);
    expect(await log.head()).toBe(1);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const found: T[] = [];
  for await (const item of items) found.push(item);
  return found;
}

async function until(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export type { OrderState };
