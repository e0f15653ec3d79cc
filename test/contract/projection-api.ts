import { describe, expect, it } from 'vitest';
import {
  CoherenceError,
  InvalidArgumentError,
  LogClosedError,
  ProjectionError,
  type ActionEvent,
  type Identity,
  type Log,
  type NewEvent,
  type ProjectionOptions,
} from '../../src/index.ts';
import { appendOk, entriesOf, rejection, thrown } from '../support/projection-fixtures.ts';
import { action, effect } from '../support/temp-log.ts';
import { coreOf } from '../../src/api/internal.ts';
import { CATCH_UP_LIMITS, openProjection, type BatchLimits } from '../../src/projections/projector.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const order = (n: number): Identity => ['order', n];

/** Lets tests hand the log what its types would not allow. */
const loose = (value: unknown): never => value as never;

/** `count` actions spread over `aggregates` orders, appended in batches of 1,000. */
async function appendOrders(log: Log, count: number, aggregates: number, first = 0): Promise<void> {
  for (let done = 0; done < count; ) {
    const events: NewEvent[] = [];
    for (; events.length < 1000 && done < count; done++) {
      const n = first + done;
      events.push(action(order(n % aggregates), [{ op: 'add', path: `/lines/${n}`, value: n }]));
    }
    await appendOk(log, events);
  }
}

interface Count {
  count: number;
  last: number;
}

const counting: ProjectionOptions<Count> = {
  init: () => ({ count: 0, last: 0 }),
  apply: (state, event) => ({ count: state.count + 1, last: event.seq }),
};

export function projectionApi(engine: TestEngine): void {
  describe('catchUp', () => {
    it('reports the first seq it looked at, its position afterwards, the actions applied and those replayed', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(order(1), [{ op: 'add', path: '/a', value: 1 }], { triggers: [['voucher', 'v']] }),
        action(order(2), [{ op: 'add', path: '/a', value: 2 }]),
        action(order(1), [{ op: 'add', path: '/b', value: 3 }]),
      ]);
      const orders = log.projection('orders');
      expect(await orders.position()).toBe(0);
      expect(await orders.catchUp()).toEqual({ from: 1, to: 3, actions: 3, replayed: 0 });
      expect(await orders.position()).toBe(3);

      await appendOk(log, [effect(['voucher', 'v']), action(order(2), [{ op: 'add', path: '/b', value: 4 }])]);
      expect(await orders.position()).toBe(3);
      // The effect at 4 replays order 1's two actions; 5 is applied.
      expect(await orders.catchUp()).toEqual({ from: 4, to: 5, actions: 1, replayed: 2 });
      expect(await orders.position()).toBe(5);
    });

    it('does nothing the second time when nothing was appended in between', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order(1), [{ op: 'add', path: '/a', value: 1 }])]);
      const orders = log.projection('orders');
      await orders.catchUp();
      const states = await entriesOf(orders);
      expect(await orders.catchUp()).toEqual({ from: 2, to: 1, actions: 0, replayed: 0 });
      expect(await orders.position()).toBe(1);
      expect(await entriesOf(orders)).toEqual(states);
    });

    it('reports nothing done on an empty log, and stays at position 0', async () => {
      const { log } = await engine.tempLog({ clock });
      const orders = log.projection('orders');
      expect(await orders.catchUp()).toEqual({ from: 1, to: 0, actions: 0, replayed: 0 });
      expect(await orders.position()).toBe(0);
      expect(await orders.get(order(1))).toBeUndefined();
      expect(await entriesOf(orders)).toEqual([]);
    });

    it('reports position `from - 1` for a projection that has not caught up yet', async () => {
      const { log } = await engine.tempLog({ clock });
      expect(await log.projection('late', { from: 10 }).position()).toBe(9);
    });

    it('keeps the position in the store, so the log opened again carries on from there', async () => {
      const { log, reopen } = await engine.tempLog({ clock });
      await appendOk(log, [action(order(1), [{ op: 'add', path: '/a', value: 1 }])]);
      await log.projection('orders').catchUp();
      await appendOk(log, [action(order(1), [{ op: 'add', path: '/b', value: 2 }])]);
      await log.close();
      const reopened = await reopen({ clock });
      const orders = reopened.projection('orders');
      expect(await orders.position()).toBe(1);
      expect(await orders.catchUp()).toEqual({ from: 2, to: 2, actions: 1, replayed: 0 });
      expect(await orders.get(order(1))).toEqual({ a: 1, b: 2 });
    });

    it('ends with LogClosedError, or finishes, when the log is closed during it, and leaves a consistent projection', async () => {
      const { log, reopen } = await engine.tempLog({ clock });
      await appendOrders(log, 20_000, 10);
      const catchingUp = log.projection('counts', counting).catchUp();
      await new Promise((resolve) => setTimeout(resolve, 5));
      await log.close();
      const outcome = await catchingUp.then((result) => result, (error: unknown) => error);
      if (outcome instanceof Error) expect(outcome).toBeInstanceOf(LogClosedError);
      else expect(outcome).toEqual({ from: 1, to: 20_000, actions: 20_000, replayed: 0 });

      const reopened = await reopen({ clock });
      const counts = reopened.projection('counts', counting);
      const position = await counts.position();
      expect(position % CATCH_UP_LIMITS.events === 0 || position === 20_000).toBe(true);
      const total = (await entriesOf(counts)).reduce((sum, [, state]) => sum + state.count, 0);
      expect(total).toBe(position);
    });

    it('runs concurrent catch-ups of one projection one after the other, applying each event once', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 300, 7);
      const counts = log.projection('counts', counting);
      const results = await Promise.all([counts.catchUp(), counts.catchUp(), log.projection('counts', counting).catchUp()]);
      expect(results.reduce((sum, r) => sum + r.actions, 0)).toBe(300);
      const total = (await entriesOf(counts)).reduce((sum, [, state]) => sum + state.count, 0);
      expect(total).toBe(300);
    });

    it('applies the JSON Patch of each action as a unit: a patch that fails leaves the state as it was', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(order(1), [{ op: 'add', path: '/status', value: 'open' }]),
        action(order(1), [{ op: 'replace', path: '/status', value: 'paid' }, { op: 'test', path: '/status', value: 'open' }]),
        action(order(1), [{ op: 'add', path: '/total', value: 9 }, { op: 'remove', path: '/missing' }]),
        action(order(1), [{ op: 'add', path: '/lines', value: [] }, { op: 'add', path: '/lines/-', value: { sku: 'a' } }]),
      ]);
      const orders = log.projection('orders');
      await orders.catchUp();
      expect(await orders.get(order(1))).toEqual({ status: 'open', lines: [{ sku: 'a' }] });
      expect(await orders.get(order(1))).toEqual((await log.state(order(1))).state);
    });

    it('gives states that callers may change without changing the stored ones', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order(1), [{ op: 'add', path: '/lines', value: [1] }])]);
      const orders = log.projection<{ lines: number[] }>('orders');
      await orders.catchUp();
      const state = await orders.get(order(1));
      state?.lines.push(2);
      expect(await orders.get(order(1))).toEqual({ lines: [1] });
    });
  });

  describe('a custom apply that throws', () => {
    const failingAt = (seq: number): ProjectionOptions<Count> => ({
      ...counting,
      apply: (state, event) => {
        if (event.seq === seq) throw new TypeError('cannot fold this one');
        return { count: state.count + 1, last: event.seq };
      },
    });

    it('stops the catch-up at that event with a ProjectionError naming the projection and the seq', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 10, 3);
      const error = await rejection(log.projection('counts', failingAt(7)).catchUp());
      expect(error).toBeInstanceOf(ProjectionError);
      expect(error).toBeInstanceOf(CoherenceError);
      const failure = error as ProjectionError;
      expect(failure.code).toBe('PROJECTION_FAILED');
      expect(failure.projection).toBe('counts');
      expect(failure.seq).toBe(7);
      expect(failure.cause).toBeInstanceOf(TypeError);
      expect((failure.cause as Error).message).toBe('cannot fold this one');
      expect(failure.message).toContain('"counts"');
      expect(failure.message).toContain('7');
    });

    it('leaves the states and the position as they were before the batch', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 10, 3);
      await log.projection('counts', counting).catchUp();
      const before = await entriesOf(log.projection('counts', counting));
      await appendOrders(log, 10, 3, 10);
      const failing = log.projection('counts', failingAt(17));
      await expect(failing.catchUp()).rejects.toThrow(ProjectionError);
      expect(await failing.position()).toBe(10);
      expect(await entriesOf(failing)).toEqual(before);
      // Once apply works again, the catch-up goes through from where it stopped.
      const fixed = log.projection('counts', counting);
      expect(await fixed.catchUp()).toEqual({ from: 11, to: 20, actions: 10, replayed: 0 });
      expect((await entriesOf(fixed)).map(([, state]) => state.count)).toEqual([7, 7, 6]);
    });

    it('fails the same way during an effect replay, and during a rebuild', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(order(1), [{ op: 'add', path: '/a', value: 1 }], { triggers: [['voucher', 'v']] }),
        action(order(2), [{ op: 'add', path: '/a', value: 1 }]),
      ]);
      let calls = 0;
      // Fails the second time it sees event 1: that is, when the effect replays it.
      const flaky = log.projection<Count>('flaky', {
        ...counting,
        apply: (state, event) => {
          if (event.seq === 1 && ++calls === 2) throw new Error('replay failed');
          return { count: state.count + 1, last: event.seq };
        },
      });
      await flaky.catchUp();
      await appendOk(log, [effect(['voucher', 'v'])]);
      const error = (await rejection(flaky.catchUp())) as ProjectionError;
      expect(error).toBeInstanceOf(ProjectionError);
      expect([error.projection, error.seq]).toEqual(['flaky', 1]);
      expect(await flaky.position()).toBe(2);

      const broken = log.projection<Count>('flaky', { ...counting, apply: () => { throw new Error('always'); } });
      const rebuildError = (await rejection(broken.rebuild())) as ProjectionError;
      expect([rebuildError.projection, rebuildError.seq]).toEqual(['flaky', 1]);
    });

    it('reports an init that throws the same way', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(order(1), [{ op: 'add', path: '/a', value: 1 }]), action(order(2), [{ op: 'add', path: '/a', value: 1 }])]);
      const projection = log.projection<Count>('init-fails', {
        ...counting,
        init: (aggregate) => {
          if (aggregate[1] === 2) throw new RangeError('no state for order 2');
          return { count: 0, last: 0 };
        },
      });
      const error = (await rejection(projection.catchUp())) as ProjectionError;
      expect(error).toBeInstanceOf(ProjectionError);
      expect([error.projection, error.seq]).toEqual(['init-fails', 2]);
      expect(error.cause).toBeInstanceOf(RangeError);
      expect(await projection.position()).toBe(0);
      expect(await entriesOf(projection)).toEqual([]);
    });

    it('in the first batch of a long catch-up leaves the position and every state unchanged', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 100, 10);
      await log.projection('counts', counting).catchUp();
      const before = await entriesOf(log.projection('counts', counting));
      await appendOrders(log, 12_000, 10, 100);
      const failing = log.projection('counts', failingAt(100 + 4_999));
      expect(((await rejection(failing.catchUp())) as ProjectionError).seq).toBe(5_099);
      expect(await failing.position()).toBe(100);
      expect(await entriesOf(failing)).toEqual(before);
    });

    it('after a completed batch keeps that batch: the position is the end of the batch and the states hold exactly its events', async () => {
      const { log } = await engine.tempLog({ clock });
      const batch = 5_000;
      await appendOrders(log, batch + 7_000, 10);
      const failing = openProjection(coreOf(log), 'counts', failingAt(batch + 2_001), { events: batch, states: CATCH_UP_LIMITS.states });
      expect(((await rejection(failing.catchUp())) as ProjectionError).seq).toBe(batch + 2_001);
      expect(await failing.position()).toBe(batch);
      const states = await entriesOf(failing);
      expect(states.map(([, state]) => state)).toEqual(
        Array.from({ length: 10 }, (_, n) => ({ count: batch / 10, last: batch - 9 + n })),
      );
      // Fixed, it carries on from the batch's end and applies each remaining event once.
      const fixed = log.projection('counts', counting);
      expect(await fixed.catchUp()).toEqual({ from: batch + 1, to: batch + 7_000, actions: 7_000, replayed: 0 });
      expect((await entriesOf(fixed)).map(([, state]) => state.count)).toEqual(Array(10).fill((batch + 7_000) / 10));
    });
  });

  describe('batches', () => {
    /** The positions onProgress reports while `limits` cut the catch-up into batches. */
    async function progressUnder(log: Log, name: string, limits: BatchLimits): Promise<number[]> {
      const positions: number[] = [];
      await openProjection(coreOf(log), name, counting, limits).catchUp({ onProgress: (position) => positions.push(position) });
      return positions;
    }

    it('end once they have changed the states cap, so one commit writes a bounded number of states, and together apply each event once', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 3_000, 1_000);
      expect(await progressUnder(log, 'uncapped', { events: 1_000_000, states: 1_000_000 })).toEqual([3_000]);

      const positions = await progressUnder(log, 'capped', { events: 1_000_000, states: 300 });
      expect(positions.length).toBeGreaterThan(2);
      expect(positions.at(-1)).toBe(3_000);
      // Each event changes another order here: a batch that ran past 1,000 events would have ignored the cap.
      positions.forEach((position, i) => expect(position - (positions[i - 1] ?? 0)).toBeGreaterThanOrEqual(300));
      positions.forEach((position, i) => expect(position - (positions[i - 1] ?? 0)).toBeLessThan(1_000));
      const states = await entriesOf(log.projection('capped', counting));
      expect(states.map(([, state]) => state.count)).toEqual(Array(1_000).fill(3));
    });

    it('end after the events cap however few states they change', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 2_500, 2);
      expect(await progressUnder(log, 'counts', { events: 1_000, states: 1_000_000 })).toEqual([1_000, 2_000, 2_500]);
      expect((await entriesOf(log.projection('counts', counting))).map(([, state]) => state.count)).toEqual([1_250, 1_250]);
    });
  });

  describe('a custom init or apply that returns a state the store cannot hold', () => {
    const cycle = () => {
      const state: Record<string, unknown> = { count: 1 };
      state.self = { back: state };
      return state;
    };
    const nested = (depth: number) => {
      let state: unknown = 'leaf';
      for (let i = 0; i < depth; i++) state = { down: state };
      return state;
    };
    const cases: [what: string, options: ProjectionOptions<unknown>, path: string, reason: string][] = [
      ['a cycle', { apply: (state, event) => (event.seq === 7 ? cycle() : state) }, 'self.back', 'expected a JSON value or a Date, got a cycle'],
      ['a BigInt', { apply: (state, event) => (event.seq === 7 ? { total: 10n } : state) }, 'total', 'expected a JSON value or a Date, got a bigint'],
      ['a symbol in an array', { apply: (state, event) => (event.seq === 7 ? { tags: ['a', Symbol('b')] } : state) }, 'tags[1]', 'expected a JSON value or a Date, got a symbol'],
      ['a function', { apply: (state, event) => (event.seq === 7 ? { render() {} } : state) }, 'render', 'expected a JSON value or a Date, got a function'],
      ['a Map', { apply: (state, event) => (event.seq === 7 ? { index: new Map() } : state) }, 'index', 'expected a JSON value or a Date, got an instance of Map'],
      ['nesting too deep', { apply: (state, event) => (event.seq === 7 ? nested(300) : state) }, `${'down.'.repeat(256)}down`, 'expected JSON nested at most 256 deep'],
      ['undefined', { apply: (state, event) => (event.seq === 7 ? undefined : state) }, '', 'expected a JSON value or a Date, got undefined'],
    ];

    it.each(cases)('fails with %s as a ProjectionError naming the projection, the seq and the path, and stores nothing', async (_, options, path, reason) => {
      const { log } = await engine.tempLog({ clock });
      // Seqs 1-3 on orders 0-2 (a first batch that goes through), then 4-10 in a second.
      await appendOrders(log, 3, 3);
      const projection = log.projection('odd', options);
      expect(await projection.catchUp()).toMatchObject({ to: 3 });
      const before = await entriesOf(projection);
      await appendOrders(log, 7, 3, 3);

      const error = (await rejection(projection.catchUp())) as ProjectionError;
      expect(error).toBeInstanceOf(ProjectionError);
      expect(error.projection).toBe('odd');
      expect(error.seq).toBe(7);
      expect(error.path).toBe(path);
      expect(error.cause).toBeInstanceOf(TypeError);
      expect((error.cause as Error).message).toBe(reason);
      expect(error.message).toBe(`projection "odd" failed at event ${error.seq}: the state it returned${path === '' ? '' : ` at ${path}`}: ${reason}`);
      expect(await projection.position()).toBe(3);
      expect(await entriesOf(projection)).toEqual(before);
    });

    it('checks what init returns too, at the first event of each aggregate', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 3, 3);
      const projection = log.projection('created', { init: () => ({ created: 1n }), apply: (state) => state });
      const error = (await rejection(projection.catchUp())) as ProjectionError;
      expect(error).toMatchObject({ projection: 'created', seq: 1, path: 'created' });
      expect(await projection.position()).toBe(0);
      expect(await entriesOf(projection)).toEqual([]);
    });

    it('stores a state holding Dates and gives them back as Dates', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOrders(log, 2, 1);
      const projection = log.projection<{ at: Date; count: number }>('dated', {
        init: () => ({ at: new Date(0), count: 0 }),
        apply: (state, event) => ({ at: event.timestamp, count: state.count + 1 }),
      });
      await projection.catchUp();
      expect(await projection.get(order(0))).toEqual({ at: clock(), count: 2 });
    });
  });

  describe('bad arguments', () => {
    it('refuses an empty or non-string name', async () => {
      const { log } = await engine.tempLog({ clock });
      for (const name of ['', undefined, null, 7, ['orders']]) {
        expect(thrown(() => log.projection(loose(name)))).toBeInstanceOf(InvalidArgumentError);
      }
      expect((thrown(() => log.projection('')) as Error).message).toMatch(/^name: expected a non-empty string/);
    });

    it('refuses unknown options, and options that are not an object', async () => {
      const { log } = await engine.tempLog({ clock });
      const error = thrown(() => log.projection('orders', loose({ kind: ['order'] })));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toContain('options.kind');
      for (const options of [null, 'orders', ['order'], 3]) {
        expect(thrown(() => log.projection('orders', loose(options)))).toBeInstanceOf(InvalidArgumentError);
      }
    });

    it('refuses an init or apply that is not a function', async () => {
      const { log } = await engine.tempLog({ clock });
      for (const name of ['init', 'apply']) {
        for (const value of [null, {}, 'fold', 1]) {
          const error = thrown(() => log.projection('orders', loose({ [name]: value })));
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect((error as Error).message).toContain(`options.${name}`);
        }
      }
    });

    it('refuses a `from` that is not a positive integer', async () => {
      const { log } = await engine.tempLog({ clock });
      for (const from of [0, -1, 1.5, '1', Number.NaN, Number.POSITIVE_INFINITY, null, 2 ** 60]) {
        const error = thrown(() => log.projection('orders', loose({ from })));
        expect(error, String(from)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toContain('from');
      }
    });

    it('refuses bad kinds and aggregates', async () => {
      const { log } = await engine.tempLog({ clock });
      for (const options of [{ kinds: 'order' }, { kinds: [''] }, { kinds: [1] }, { aggregates: ['order', 1] }, { aggregates: [['order']] }, { aggregates: [['', 1]] }, { aggregates: [['order', 1.5]] }]) {
        expect(thrown(() => log.projection('orders', loose(options))), JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      }
    });

    it('does not change the options it is given', async () => {
      const { log } = await engine.tempLog({ clock });
      const kinds = ['order', 'customer'];
      const aggregates: Identity[] = [['order', 2], ['customer', 'alice']];
      const options = { kinds, aggregates, from: 1 };
      const copy = structuredClone(options);
      await appendOk(log, [action(order(2), [{ op: 'add', path: '/a', value: 1 }])]);
      await log.projection('orders', options).catchUp();
      expect(options).toEqual(copy);
    });

    it('refuses a bad identity to get, a bad kind to entries and a bad onError to follow', async () => {
      const { log } = await engine.tempLog({ clock });
      const orders = log.projection('orders');
      for (const aggregate of [['order'], 'order', ['order', 1.5], ['', 1], null]) {
        await expect(orders.get(loose(aggregate))).rejects.toThrow(InvalidArgumentError);
      }
      for (const options of [{ kind: '' }, { kind: 1 }, 'order']) {
        await expect(entriesOf(orders, loose(options))).rejects.toThrow(InvalidArgumentError);
      }
      for (const options of [{ onError: 'log' }, 'x']) {
        expect(thrown(() => orders.follow(loose(options)))).toBeInstanceOf(InvalidArgumentError);
      }
    });

    it('refuses to work on a closed log with LogClosedError', async () => {
      const { log } = await engine.tempLog({ clock });
      const orders = log.projection('orders');
      await log.close();
      expect(thrown(() => log.projection('other'))).toBeInstanceOf(LogClosedError);
      await expect(orders.catchUp()).rejects.toThrow(LogClosedError);
      await expect(orders.get(order(1))).rejects.toThrow(LogClosedError);
      await expect(orders.position()).rejects.toThrow(LogClosedError);
      await expect(orders.rebuild()).rejects.toThrow(LogClosedError);
      await expect(entriesOf(orders)).rejects.toThrow(LogClosedError);
    });
  });

  describe('the apply callback', () => {
    it('receives each action event as read gives it', async () => {
      const { log } = await engine.tempLog({ clock });
      const written = await appendOk(log, [action(order(1), [{ op: 'add', path: '/a', value: 1 }], { triggers: [['voucher', 'v']] })]);
      const seen: ActionEvent[] = [];
      await log.projection('spy', { apply: (state, event) => { seen.push(event); return state; } }).catchUp();
      expect(seen).toEqual(written);
    });
  });
}
