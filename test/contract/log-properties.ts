import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  InvalidEventError,
  type AppendOptions,
  type AppendResult,
  type Identity,
  type Log,
  type LogEvent,
  type NewEvent,
  type Operation,
  type ReadOptions,
} from '../../src/index.ts';
import { ReferenceLog } from '../support/reference-model.ts';
import { action, allEvents, effect } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

// A small world, so that random commands collide often: the same aggregates, triggers and paths.
// ['book', 1] and ['book', '1'] are different aggregates and must stay apart.
const AGGREGATES: Identity[] = [['book', 'a'], ['book', 'b'], ['book', 1], ['book', '1'], ['author', 'a']];
const TRIGGERS: Identity[] = [['key', 'k1'], ['key', 'k2'], ['consent', 7]];
const KINDS = ['book', 'author', 'user'];
// Mostly shallow paths that succeed and build up state; now and then the root, which every path
// lies under, and escaped or nested paths.
const pointer = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('/a', '/b', '/n', '/list') },
  { weight: 4, arbitrary: fc.constantFrom('/a/x', '/b/x') },
  { weight: 6, arbitrary: fc.constantFrom('/list/0', '/list/1', '/list/-') },
  { weight: 2, arbitrary: fc.constantFrom('/a/x/y', '/a~1b', '/list/0/x') },
  { weight: 1, arbitrary: fc.constant('') },
);
const jsonValue = fc.oneof(
  fc.integer({ min: 0, max: 3 }),
  fc.constantFrom('s', null, true),
  fc.record({ x: fc.integer({ min: 0, max: 2 }) }),
  fc.array(fc.oneof(fc.integer({ min: 0, max: 2 }), fc.record({ x: fc.nat(2) })), { maxLength: 3 }),
);
const operation = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('add'), path: pointer, value: jsonValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('replace', 'test'), path: pointer, value: jsonValue }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove'), path: pointer.filter((p) => p !== '') }) },
  {
    weight: 1,
    // RFC 6902 4.4: a value cannot be moved into one of its own children (the log refuses it).
    arbitrary: fc
      .record({ op: fc.constantFrom('move', 'copy'), path: pointer, from: pointer })
      .filter((o) => o.op === 'copy' || o.path === o.from || !`${o.path}/`.startsWith(`${o.from}/`)),
  },
) as fc.Arbitrary<Operation>;

const timestamp = fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true });
const newAction: fc.Arbitrary<NewEvent> = fc
  .record({
    aggregate: fc.constantFrom(...AGGREGATES),
    patch: fc.oneof(fc.tuple(operation), fc.array(operation, { minLength: 1, maxLength: 4 })),
    triggers: fc.option(fc.subarray(TRIGGERS, { minLength: 1 }), { nil: undefined, freq: 2 }),
    at: fc.option(timestamp, { nil: undefined, freq: 4 }),
  })
  .map(({ aggregate, patch, triggers, at }) =>
    action(aggregate, patch, { ...(triggers === undefined ? {} : { triggers }), ...(at === undefined ? {} : { timestamp: at }) }),
  );
const newEffect: fc.Arbitrary<NewEvent> = fc
  .constantFrom<Identity>(...TRIGGERS, ['key', 'never-linked'])
  .map((trigger) => effect(trigger));
const newEvent = fc.oneof({ weight: 4, arbitrary: newAction }, { weight: 1, arbitrary: newEffect });
const batch = fc.array(newEvent, { minLength: 1, maxLength: 3 });

/** A base relative to the head at the time of the command: `back` steps behind it, or beyond it. */
const baseChoice = fc.oneof(
  { weight: 9, arbitrary: fc.record({ back: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ beyond: fc.integer({ min: 1, max: 3 }) }) },
);
type BaseChoice = { back: number } | { beyond: number };

function pickBase(choice: BaseChoice, head: number): number {
  return 'beyond' in choice ? head + choice.beyond : Math.max(0, head - choice.back);
}

type Command =
  | { type: 'append'; events: NewEvent[]; base: BaseChoice; resolved: number[]; dryRun: boolean | undefined; merge: AppendOptions['merge']; tick: number }
  | { type: 'read'; from: number; aggregates: Identity[] | undefined; kinds: string[] | undefined; replay: boolean | undefined }
  | { type: 'state'; aggregate: Identity }
  | { type: 'conflicts'; base: BaseChoice; aggregate: Identity }
  | { type: 'get'; seq: number }
  | { type: 'head' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.constant('append' as const),
      events: batch,
      base: baseChoice,
      resolved: fc.array(fc.nat(50), { maxLength: 3 }),
      dryRun: fc.option(fc.boolean(), { nil: undefined }),
      merge: fc.constantFrom<AppendOptions['merge']>(undefined, 'none', 'disjoint-paths'),
      tick: fc.nat(5_000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('read' as const),
      from: fc.nat(60),
      aggregates: fc.option(fc.subarray(AGGREGATES), { nil: undefined }),
      kinds: fc.option(fc.subarray(KINDS), { nil: undefined }),
      replay: fc.option(fc.boolean(), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('state' as const), aggregate: fc.constantFrom(...AGGREGATES) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('conflicts' as const), base: baseChoice, aggregate: fc.constantFrom(...AGGREGATES) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('get' as const), seq: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 1, arbitrary: fc.constant({ type: 'head' as const }) },
);

/** A log on a fresh store of `engine`, whose clock the test sets before every append; closed by the caller. */
async function openTestLog(engine: TestEngine): Promise<{ log: Log; setNow: (date: Date) => void }> {
  let now = new Date('2024-01-01T00:00:00Z');
  const { log } = await engine.tempLog({ clock: () => now });
  return { log, setNow: (date) => { now = date; } };
}

async function collect(events: AsyncIterable<LogEvent>): Promise<LogEvent[]> {
  const result: LogEvent[] = [];
  for await (const event of events) result.push(event);
  return result;
}

function expectGapless(events: readonly LogEvent[], head: number): void {
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
}

export function logProperties(engine: TestEngine): void {
  describe('log properties', () => {
    it('numbers events 1..head without gaps, whatever mix of written, refused and rejected batches came before', async () => {
      const step = fc.record({
        events: batch,
        base: baseChoice,
        dryRun: fc.boolean(),
        // Where to slip a malformed event into the batch, or a bad base: the whole batch must be refused.
        broken: fc.option(fc.oneof(fc.nat(3), fc.constant('base' as const)), { nil: undefined, freq: 4 }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
          const { log } = await openTestLog(engine);
          try {
            const written: LogEvent[] = [];
            for (const s of steps) {
              const base = pickBase(s.base, await log.head());
              if (s.broken === 'base') {
                await expect(log.append(s.events, { base: -1 - base, dryRun: s.dryRun })).rejects.toBeInstanceOf(InvalidArgumentError);
                continue;
              }
              if (s.broken !== undefined) {
                const events: unknown[] = [...s.events];
                events.splice(Math.min(s.broken, events.length), 0, action(['book', 'a'], []));
                await expect(log.append(events as NewEvent[], { base, dryRun: s.dryRun })).rejects.toBeInstanceOf(InvalidEventError);
                continue;
              }
              const result = await log.append(s.events, { base, dryRun: s.dryRun });
              if (result.status === 'ok' && !s.dryRun) written.push(...result.events);
            }
            const head = await log.head();
            const stored = await allEvents(log);
            expectGapless(stored, head);
            expect(stored).toEqual(written);
            expect(await log.verify()).toEqual({ ok: true, events: head });
          } finally {
            await log.close();
          }
        }),
        { numRuns: 30 },
      );
    });

    it('lets exactly one of N racing appends on one aggregate with the same base win, and shows every loser the winner', async () => {
      const race = fc.record({
        racers: fc.integer({ min: 8, max: 20 }),
        history: fc.array(newEvent, { maxLength: 6 }),
        shared: fc.constantFrom(...AGGREGATES),
        // Each racer may carry a second action on an aggregate of its own, which raises no conflict.
        withOwn: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(race, async ({ racers, history, shared, withOwn }) => {
          const { log } = await openTestLog(engine);
          try {
            if (history.length > 0) expect((await log.append(history, { base: 0 })).status).toBe('ok');
            const base = await log.head();
            const batches = Array.from({ length: racers }, (_, i) => [
              // Replacing the root always applies, whatever the history left in the aggregate.
              action(shared, [{ op: 'replace', path: '', value: { winner: i } }]),
              ...(withOwn ? [action(['racer', i], [{ op: 'add', path: '/n', value: i }])] : []),
            ]);
            const results = await Promise.all(batches.map((events) => log.append(events, { base })));

            const winners = results.flatMap((r, i) => (r.status === 'ok' ? [i] : []));
            expect(winners).toHaveLength(1);
            const winner = winners[0] as number;
            const won = results[winner] as Extract<AppendResult, { status: 'ok' }>;
            const winnerSize = batches[winner]?.length ?? 0;
            expect(won.events.map((e) => e.seq)).toEqual(Array.from({ length: winnerSize }, (_, i) => base + 1 + i));
            results.forEach((result, i) => {
              if (i === winner) return;
              expect(result.status).toBe('conflict');
              if (result.status !== 'conflict') return;
              expect(result.conflicts).toHaveLength(1);
              expect(result.conflicts[0]?.theirs).toEqual(won.events[0]);
              expect(result.conflicts[0]?.ours).toMatchObject({ seq: base + winnerSize + 1, action: { aggregate: shared, patch: [{ value: { winner: i } }] } });
              expect(result.accepted.map((e) => e.seq)).toEqual(withOwn ? [base + winnerSize + 2] : []);
            });
            expect(await log.head()).toBe(base + winnerSize);
            expect((await log.state(shared)).state).toEqual({ winner });
          } finally {
            await log.close();
          }
        }),
        { numRuns: 15 },
      );
    });

    it('leaves an aggregate\'s state as it was when a move or copy onto the root names a location that does not exist', async () => {
      const missing = fc.record({
        history: fc.array(operation, { maxLength: 6 }),
        op: fc.constantFrom('move' as const, 'copy' as const),
        // None of these can exist: six operations cannot grow /list to ten elements or reach /a/x/y/z.
        from: fc.constantFrom('/missing', '/missing/x', '/list/9', '/a/x/y/z'),
      });
      await fc.assert(
        fc.asyncProperty(missing, async ({ history, op, from }) => {
          const { log } = await openTestLog(engine);
          try {
            const book: Identity = ['book', 'a'];
            for (const operation of history) await log.append([action(book, [operation])], { base: await log.head() });
            const before = (await log.state(book)).state;
            // RFC 6902 4.4/4.5: the "from" location MUST exist for the operation to succeed.
            expect((await log.append([action(book, [{ op, path: '', from }])], { base: await log.head() })).status).toBe('ok');
            expect((await log.state(book)).state).toEqual(before);
          } finally {
            await log.close();
          }
        }),
        { numRuns: 15 },
      );
    });

    it('answers every append, read, state, conflicts, get and head exactly as the reference model does', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 60, size: 'large' }), async (commands) => {
          const { log, setNow } = await openTestLog(engine);
          const model = new ReferenceLog();
          let now = new Date('2024-01-01T00:00:00Z').getTime();
          try {
            for (const c of commands) {
              const head = model.head();
              switch (c.type) {
                case 'append': {
                  const base = pickBase(c.base, head);
                  const resolved = [...new Set(head > base ? c.resolved.map((r) => base + 1 + (r % (head - base))) : [])];
                  const options: AppendOptions = {
                    base,
                    ...(resolved.length > 0 ? { resolved } : {}),
                    ...(c.dryRun === undefined ? {} : { dryRun: c.dryRun }),
                    ...(c.merge === undefined ? {} : { merge: c.merge }),
                  };
                  now += 1 + c.tick;
                  setNow(new Date(now));
                  const expected = model.append(c.events, options, new Date(now));
                  const given = structuredClone({ events: c.events, options });
                  expect(await log.append(c.events, options), JSON.stringify(given)).toEqual(expected);
                  expect({ events: c.events, options }, 'append must not change its arguments').toEqual(given);
                  break;
                }
                case 'read': {
                  const options: ReadOptions = {
                    from: 1 + (c.from % (head + 2)),
                    ...(c.aggregates === undefined ? {} : { aggregates: c.aggregates }),
                    ...(c.kinds === undefined ? {} : { kinds: c.kinds }),
                    ...(c.replay === undefined ? {} : { replay: c.replay }),
                  };
                  expect(await collect(log.read(options)), JSON.stringify(options)).toEqual(model.read(options));
                  break;
                }
                case 'state':
                  expect(await log.state(c.aggregate), JSON.stringify(c.aggregate)).toEqual(model.state(c.aggregate));
                  break;
                case 'conflicts': {
                  const base = pickBase(c.base, head);
                  expect(await log.conflicts(base, c.aggregate)).toEqual(model.conflicts(base, c.aggregate));
                  break;
                }
                case 'get':
                  expect(await log.get(c.seq)).toEqual(model.get(c.seq));
                  break;
                case 'head':
                  expect(await log.head()).toBe(head);
                  break;
              }
            }
            // Then every starting point, where the replay rule matters most, and every aggregate's state.
            expect(await allEvents(log)).toEqual(model.events);
            for (let from = 2; from <= model.head(); from++) {
              expect(await collect(log.read({ from })), `read from ${from}`).toEqual(model.read({ from }));
              expect(await collect(log.read({ from, kinds: ['book'] })), `read from ${from} of books`).toEqual(model.read({ from, kinds: ['book'] }));
            }
            for (const aggregate of AGGREGATES) expect(await log.state(aggregate)).toEqual(model.state(aggregate));
            expect(await log.verify()).toEqual({ ok: true, events: model.head() });
          } finally {
            await log.close();
          }
        }),
        { numRuns: 60 },
      );
    });
  });
}
