/**
 * Deciders and the command service (SPEC 10): one head for all states, deciding again after a
 * race, the actor's base, rejections, bugs and bad intents, options.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CoherenceError,
  CommandError,
  createCommandService,
  decider,
  InvalidArgumentError,
  InvalidEventError,
  memoryEngine,
  openLog,
  RejectedError,
  type CommandService,
  type DecideContext,
  type Decider,
  type Identity,
  type Intent,
  type Log,
  type LogEvent,
} from '../src/index.ts';
import { backoffDelay } from '../src/commands/command-service.ts';
import { applyPatchAtomic } from '../src/model/fold.ts';
import { spawnChild } from './support/child-process.ts';
import { action, allEvents, tempDir, tempLog } from './support/temp-log.ts';
import { rejection } from './support/crypto-fixtures.ts';

const alice: Identity = ['user', 'alice'];
const clock = () => new Date('2025-03-01T10:00:00.000Z');
const as = { actor: alice, source: 'test' };
const loose = <T>(value: unknown): T => value as T;

interface Counter { n?: number }

/** Increments `/n` of ['counter', id]; records what it was given. */
function counter(seen: { states: unknown[]; head: number; context: DecideContext }[] = [], name = 'increment'): Decider<{ id: string | number }> {
  return decider<{ id: string | number }>({
    name,
    aggregates: ({ id }) => [['counter', id]],
    decide({ id }, states, context) {
      const state = states.get(['counter', id]) as Counter;
      seen.push({ states: [state], head: states.head, context });
      return [{ aggregate: ['counter', id], reason: 'increment', patch: [{ op: 'add', path: '/n', value: (state.n ?? 0) + 1 }] }];
    },
  });
}

/** A decider whose decide is `decide`, on the aggregates `aggregates`. */
function deciding(decide: Decider<unknown>['decide'], aggregates: Identity[] = [['counter', 1]], name = 'test'): Decider<unknown> {
  return decider<unknown>({ name, aggregates: () => aggregates, decide });
}

async function service(deciders: Decider<never>[], options: Parameters<typeof tempLog>[0] = {}) {
  const { log, path } = await tempLog({ clock, ...options });
  return { log, path, commands: createCommandService(log, { deciders, retry: { minDelayMs: 0, maxDelayMs: 0 } }) };
}

/** The fold of `aggregate` over the log's events up to `head`, as `log.state` folds it. */
async function foldAt(log: Log, aggregate: Identity, head: number): Promise<unknown> {
  let state: unknown = {};
  for (const event of await allEvents(log)) {
    if (event.seq > head) break;
    if ('action' in event && JSON.stringify(event.action.aggregate) === JSON.stringify(aggregate)) state = applyPatchAtomic(state, event.action.patch);
  }
  return state;
}

describe('reading and deciding', () => {
  // On LMDB a read snapshot could hide a torn read, so also on the memory engine, which reads
  // the latest write every time; several executes at once, with heads being read in between.
  for (const engine of ['lmdb', 'memory'] as const) {
    it(`gives decide the states of every aggregate it names, all folded at one head, while another writer appends to them (${engine})`, async () => {
      const a: Identity = ['pair', 'a'];
      const b: Identity = ['pair', 'b'];
      const seen: { head: number; a: unknown; b: unknown }[] = [];
      const audit = decider<number>({
        name: 'audit',
        aggregates: () => [a, b],
        decide(i, states) {
          seen.push({ head: states.head, a: states.get(a), b: states.get(b) });
          return [{ aggregate: ['audit', i], reason: 'audited', patch: [{ op: 'add', path: '/at', value: states.head }] }];
        },
      });
      const memory = memoryEngine();
      const { log, path } = engine === 'lmdb' ? await tempLog({ clock }) : { log: await openLog({ engine: memory, clock }), path: '' };
      const commands = createCommandService(log, { deciders: [audit] });
      // Another connection writes a, then b, the same n: at any one head, b is at most one behind.
      const writer = await openLog(engine === 'lmdb' ? { path } : { engine: memory });
      const writes = (async () => {
        for (let n = 1; n <= 100; n++) {
          for (const aggregate of [a, b]) {
            const result = await writer.append([action(aggregate, [{ op: 'add', path: '/n', value: n }])], { base: await writer.head() });
            expect(result.status).toBe('ok');
          }
        }
      })();
      const results = [];
      for (let i = 0; i < 20; i++) results.push(...(await Promise.all([0, 1, 2, 3].map((k) => commands.execute('audit', i * 4 + k, as)))));
      await writes;
      await writer.close();

      expect(results.every((r) => r.status === 'ok')).toBe(true);
      expect(new Set(seen.map((s) => s.head)).size).toBeGreaterThan(1);
      for (const { head, a: stateA, b: stateB } of seen) {
        expect((stateA as Counter).n ?? 0).toBeGreaterThanOrEqual((stateB as Counter).n ?? 0);
        expect((stateA as Counter).n ?? 0).toBeLessThanOrEqual(((stateB as Counter).n ?? 0) + 1);
        expect(stateA).toEqual(await foldAt(log, a, head));
        expect(stateB).toEqual(await foldAt(log, b, head));
      }
      if (engine === 'memory') await log.close();
    });
  }

  it('gives {} as the state of a new aggregate and the head it read at', async () => {
    const seen: { states: unknown[]; head: number; context: DecideContext }[] = [];
    const { log, commands } = await service([counter(seen)]);
    await log.append([action(['other', 1], [{ op: 'add', path: '/x', value: 1 }])], { base: 0 });
    await commands.execute('increment', { id: 'new' }, as);
    expect(seen[0]?.states).toEqual([{}]);
    expect(seen[0]?.head).toBe(1);
  });

  it('passes the actor, the log clock as now, attempt 1 and no conflicts in the context', async () => {
    const seen: { states: unknown[]; head: number; context: DecideContext }[] = [];
    const { commands } = await service([counter(seen)]);
    await commands.execute('increment', { id: 1 }, as);
    expect(seen[0]?.context).toEqual({ actor: alice, now: clock(), attempt: 1, conflicts: [] });
  });

  it('appends the intents as one batch, each an action with the actor and source of the call', async () => {
    const pair = deciding(() => [
      { aggregate: ['counter', 1], reason: 'one', patch: [{ op: 'add', path: '/n', value: 1 }] },
      { aggregate: ['counter', 2], reason: 'two', patch: [{ op: 'add', path: '/n', value: 2 }], triggers: [['consent', 'c']] },
    ], [['counter', 1], ['counter', 2]]);
    const { log, commands } = await service([pair]);
    const result = await commands.execute('test', {}, { actor: ['user', 'bob'], source: 'web' });
    expect(result).toMatchObject({ status: 'ok', attempts: 1 });
    if (result.status !== 'ok') return;
    expect(result.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(result.events).toEqual(await allEvents(log));
    expect(result.events[1]).toMatchObject({
      source: 'web',
      action: { reason: 'two', actor: ['user', 'bob'], aggregate: ['counter', 2], patch: [{ op: 'add', path: '/n', value: 2 }] },
      triggers: [['consent', 'c']],
    });
  });

  it('encrypts what an intent asks to, as append does', async () => {
    const paid = deciding(() => [{ aggregate: ['receipt', 1], reason: 'paid', patch: [{ op: 'add', path: '/card', value: '4111' }], encrypt: { key: ['user', 'alice'] } }], [['receipt', 1]]);
    const { log, commands } = await service([paid], { masterKey: new Uint8Array(32).fill(7) });
    await commands.execute('test', {}, as);
    const [raw] = await (async () => { const events = []; for await (const e of log.read({ raw: true })) events.push(e); return events; })();
    expect(JSON.stringify(raw)).not.toContain('4111');
    expect((await log.state(['receipt', 1])).state).toEqual({ card: '4111' });
    expect(raw).toMatchObject({ triggers: [['user', 'alice']] });
  });

  it('returns ok with no events and writes nothing when the decider decides nothing', async () => {
    const { log, commands } = await service([deciding(() => [])]);
    expect(await commands.execute('test', {}, as)).toEqual({ status: 'ok', events: [], attempts: 1 });
    expect(await log.head()).toBe(0);
  });

  it('decides and checks in a dry run, and writes nothing', async () => {
    const { log, commands } = await service([counter()]);
    const result = await commands.execute('increment', { id: 1 }, { ...as, dryRun: true });
    expect(result).toMatchObject({ status: 'ok', attempts: 1, events: [{ seq: 1, action: { patch: [{ op: 'add', path: '/n', value: 1 }] } }] });
    expect(await log.head()).toBe(0);
  });

  it('waits for an async decide', async () => {
    const { log, commands } = await service([deciding(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return [{ aggregate: ['counter', 1], reason: 'later', patch: [{ op: 'add', path: '/n', value: 1 }] }];
    })]);
    expect(await commands.execute('test', {}, as)).toMatchObject({ status: 'ok' });
    expect((await log.state(['counter', 1])).state).toEqual({ n: 1 });
  });

  it('throws InvalidArgumentError when decide asks states.get for an aggregate it did not name, and writes nothing', async () => {
    const { log, commands } = await service([deciding((_, states) => [{ aggregate: ['counter', 2], reason: 'r', patch: [{ op: 'add', path: '/n', value: states.get(['counter', 2]) }] }])]);
    const error = await rejection(commands.execute('test', {}, as));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toBe('decider "test": states.get(["counter",2]): expected one of the aggregates it named (["counter",1]), got another');
    expect(await log.head()).toBe(0);
  });

  it('reads an aggregate named twice by aggregates(command) once', async () => {
    const seen: number[] = [];
    const { commands } = await service([decider<unknown>({ name: 'twice', aggregates: () => [['counter', 1], ['counter', 1]], decide: (_, states) => { seen.push(states.head); return []; } })]);
    expect(await commands.execute('twice', {}, as)).toMatchObject({ status: 'ok' });
    expect(seen).toEqual([0]);
  });
});

describe('races', () => {
  /** A decider that, on the attempts in `raceOn`, lets `other` append to its aggregate between its read and its append. */
  function racing(other: Log, raceOn: (attempt: number) => boolean, contexts: DecideContext[], theirs: LogEvent[]) {
    return decider<unknown>({
      name: 'race',
      aggregates: () => [['counter', 1]],
      async decide(_, states, context) {
        contexts.push(context);
        const state = states.get(['counter', 1]) as Counter;
        if (raceOn(context.attempt)) {
          const result = await other.append([action(['counter', 1], [{ op: 'add', path: '/other', value: context.attempt }], { actor: ['user', 'other'] })], { base: await other.head() });
          if (result.status !== 'ok') throw new Error('the other writer failed');
          theirs.push(...result.events);
        }
        return [{ aggregate: ['counter', 1], reason: 'increment', patch: [{ op: 'add', path: '/n', value: (state.n ?? 0) + 1 }] }];
      },
    });
  }

  it('reads and decides again when another writer got in between, with context.conflicts set to what came in between', async () => {
    const { log, path } = await tempLog({ clock });
    await log.append([action(['counter', 1], [{ op: 'add', path: '/n', value: 10 }])], { base: 0 });
    const other = await openLog({ path });
    const contexts: DecideContext[] = [];
    const theirs: LogEvent[] = [];
    const commands = createCommandService(log, { deciders: [racing(other, (attempt) => attempt === 1, contexts, theirs)], retry: { minDelayMs: 0, maxDelayMs: 0 } });
    const result = await commands.execute('race', {}, as);
    await other.close();

    expect(result).toMatchObject({ status: 'ok', attempts: 2, events: [{ seq: 3 }] });
    expect(contexts.map((c) => c.attempt)).toEqual([1, 2]);
    expect(contexts[0]?.conflicts).toEqual([]);
    expect(contexts[1]?.conflicts.map((c) => c.theirs)).toEqual(theirs);
    expect(contexts[1]?.conflicts[0]?.ours).toMatchObject({ seq: 3, action: { actor: alice, patch: [{ op: 'add', path: '/n', value: 11 }] } });
    // Decided again on the fresh state: no lost update.
    expect((await log.state(['counter', 1])).state).toEqual({ n: 11, other: 1 });
  });

  it('returns conflict with the attempts made once retry.attempts are used up, and writes nothing of its own', async () => {
    const { log, path } = await tempLog({ clock });
    const other = await openLog({ path });
    const contexts: DecideContext[] = [];
    const theirs: LogEvent[] = [];
    const commands = createCommandService(log, { deciders: [racing(other, () => true, contexts, theirs)], retry: { attempts: 4, minDelayMs: 0, maxDelayMs: 0 } });
    const result = await commands.execute('race', {}, as);
    await other.close();

    expect(result).toMatchObject({ status: 'conflict', attempts: 4 });
    if (result.status !== 'conflict') return;
    expect(result.conflicts.map((c) => c.theirs)).toEqual([theirs[3]]);
    expect(contexts.map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
    expect((await allEvents(log)).map((e) => 'action' in e && e.action.actor)).toEqual([['user', 'other'], ['user', 'other'], ['user', 'other'], ['user', 'other']]);
  });

  it('makes 3 attempts in all by default', async () => {
    const { log, path } = await tempLog({ clock });
    const other = await openLog({ path });
    const commands = createCommandService(log, { deciders: [racing(other, () => true, [], [])] });
    expect(await commands.execute('race', {}, as)).toMatchObject({ status: 'conflict', attempts: 3 });
    await other.close();
  });

  it('loses no update when many executes on one aggregate race in one process', async () => {
    const { log, commands } = await service([counter()]);
    const fast = createCommandService(log, { deciders: [counter()], retry: { attempts: 50, minDelayMs: 0, maxDelayMs: 1 } });
    const results = await Promise.all(Array.from({ length: 30 }, () => fast.execute('increment', { id: 1 }, as)));
    expect(results.every((r) => r.status === 'ok')).toBe(true);
    expect(results.some((r) => r.status === 'ok' && r.attempts > 1)).toBe(true);
    expect((await log.state(['counter', 1])).state).toEqual({ n: 30 });
    void commands;
  });

  it('pauses between attempts for a jittered time that grows from minDelayMs up to maxDelayMs', () => {
    const retry = { attempts: 10, minDelayMs: 5, maxDelayMs: 200 };
    expect([1, 2, 3, 6].map((attempt) => backoffDelay(retry, attempt, () => 0))).toEqual([5, 5, 5, 5]);
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(retry, attempt, () => 1))).toEqual([10, 20, 40, 80, 160, 200]);
    expect(backoffDelay(retry, 2, () => 0.5)).toBe(12.5);
  });
});

describe("the actor's base", () => {
  async function withHistory() {
    const seen: { states: unknown[]; head: number; context: DecideContext }[] = [];
    const { log, commands } = await service([counter(seen)]);
    await log.append([action(['counter', 1], [{ op: 'add', path: '/n', value: 1 }])], { base: 0 });
    await log.append([action(['counter', 1], [{ op: 'add', path: '/note', value: 'bob' }], { actor: ['user', 'bob'] })], { base: 1 });
    return { log, commands, seen };
  }

  it("returns what came after the actor's base as conflict, without deciding again", async () => {
    const { log, commands, seen } = await withHistory();
    const result = await commands.execute('increment', { id: 1 }, { ...as, base: 1 });
    expect(result).toMatchObject({ status: 'conflict', attempts: 1, conflicts: [{ ours: { seq: 3 }, theirs: { seq: 2, action: { actor: ['user', 'bob'] } } }] });
    expect(seen).toHaveLength(1);
    expect(await log.head()).toBe(2);
  });

  it('goes through when the actor resolved what came after its base', async () => {
    const { log, commands } = await withHistory();
    expect(await commands.execute('increment', { id: 1 }, { ...as, base: 1, resolved: [2] })).toMatchObject({ status: 'ok', attempts: 1, events: [{ seq: 3 }] });
    expect((await log.state(['counter', 1])).state).toEqual({ n: 2, note: 'bob' });
  });

  it("with merge: 'disjoint-paths', decides on the current states and lets a change to other paths through on the actor's base", async () => {
    const { log, commands, seen } = await withHistory();
    const result = await commands.execute('increment', { id: 1 }, { ...as, base: 1, merge: 'disjoint-paths' });
    expect(result).toMatchObject({ status: 'ok', attempts: 1 });
    expect(seen[0]?.states).toEqual([{ n: 1, note: 'bob' }]);
    expect(seen[0]?.head).toBe(2);
    expect((await log.state(['counter', 1])).state).toEqual({ n: 2, note: 'bob' });
    // An overlapping change still conflicts.
    await log.append([action(['counter', 1], [{ op: 'replace', path: '/n', value: 7 }])], { base: 3 });
    expect(await commands.execute('increment', { id: 1 }, { ...as, base: 3, merge: 'disjoint-paths' })).toMatchObject({ status: 'conflict', attempts: 1 });
  });

  it('returns invalid-base for a base beyond the head, without deciding', async () => {
    const { commands, seen } = await withHistory();
    expect(await commands.execute('increment', { id: 1 }, { ...as, base: 9 })).toEqual({ status: 'invalid-base', head: 2 });
    expect(seen).toHaveLength(0);
  });
});

describe('rejections and bugs', () => {
  const refusing = (details?: unknown) => deciding(() => {
    throw new RejectedError('no-copies', details);
  });

  it('returns rejected with the reason and details, and writes nothing', async () => {
    const { log, commands } = await service([refusing({ isbn: 'N' })]);
    expect(await commands.execute('test', {}, as)).toEqual({ status: 'rejected', reason: 'no-copies', details: { isbn: 'N' } });
    expect(await log.head()).toBe(0);
  });

  it('leaves details out of rejected when there are none', async () => {
    const { commands } = await service([refusing()]);
    expect(await commands.execute('test', {}, as)).toStrictEqual({ status: 'rejected', reason: 'no-copies' });
  });

  it('returns rejected when aggregates(command) throws RejectedError', async () => {
    const { commands } = await service([decider<unknown>({ name: 'test', aggregates: () => { throw new RejectedError('bad-command'); }, decide: () => [] })]);
    expect(await commands.execute('test', {}, as)).toEqual({ status: 'rejected', reason: 'bad-command' });
  });

  it('rejects with CommandError naming the decider, with the cause, when decide throws anything else, and writes nothing', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'copies')");
    const { log, commands } = await service([deciding(() => { throw bug; }, [['counter', 1]], 'reserve')]);
    const error = await rejection(commands.execute('reserve', {}, as));
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toBeInstanceOf(CoherenceError);
    expect(error).toMatchObject({ code: 'COMMAND_FAILED', decider: 'reserve', cause: bug });
    expect((error as Error).message).toBe(`decider "reserve" failed: ${bug.message}`);
    expect(await log.head()).toBe(0);
  });

  it('rejects with CommandError when an async decide rejects, or aggregates(command) throws or returns no identities', async () => {
    const bug = new Error('boom');
    const cases: Decider<unknown>[] = [
      deciding(async () => { throw bug; }),
      decider<unknown>({ name: 'test', aggregates: () => { throw bug; }, decide: () => [] }),
      decider<unknown>({ name: 'test', aggregates: () => [], decide: () => [] }),
      decider<unknown>({ name: 'test', aggregates: () => loose(['counter', 1]), decide: () => [] }),
      decider<unknown>({ name: 'test', aggregates: () => loose([['counter']]), decide: () => [] }),
      deciding(() => loose({ aggregate: ['counter', 1] })),
    ];
    const messages = [];
    for (const d of cases) {
      const { commands } = await service([d]);
      const error = await rejection(commands.execute('test', {}, as));
      expect(error).toBeInstanceOf(CommandError);
      messages.push((error as Error).message);
    }
    expect(messages).toEqual([
      'decider "test" failed: boom',
      'decider "test" failed: boom',
      'decider "test" failed: aggregates(command) returned an empty array, expected one or more identities',
      'decider "test" failed: aggregates(command)[0]: expected an identity [kind, id], got "counter"',
      'decider "test" failed: aggregates(command)[0]: expected an identity [kind, id], got an array',
      'decider "test" failed: decide returned an object, expected an array of intents',
    ]);
  });

  it('throws InvalidEventError naming the decider and the intent for an intent that is not a valid action, and writes nothing', async () => {
    const valid: Intent = { aggregate: ['counter', 1], reason: 'ok', patch: [{ op: 'add', path: '/n', value: 1 }] };
    const cases: [unknown, string, number, string][] = [
      [{ ...valid, patch: [{ op: 'add', path: 'n', value: 1 }] }, 'patch[0].path', 0, 'decider "reserve": intents[1].patch[0].path: expected a JSON Pointer starting with "/", got "n"'],
      [{ ...valid, reason: '' }, 'reason', 0, 'decider "reserve": intents[1].reason: expected a non-empty string, got ""'],
      [{ ...valid, aggregate: ['counter'] }, 'aggregate', 0, 'decider "reserve": intents[1].aggregate: expected an identity [kind, id], got an array'],
      [{ ...valid, patch: [] }, 'patch', 0, 'decider "reserve": intents[1].patch: expected a non-empty array of operations, got an empty array'],
      [{ ...valid, patch: [{ op: 'add', path: '/n', value: () => 1 }] }, 'patch[0].value', 0, 'decider "reserve": intents[1].patch[0].value: expected a JSON value, got a function'],
      [{ ...valid, triggers: [['a', 1], ['a', 1]] }, 'triggers[1]', 0, 'decider "reserve": intents[1].triggers[1]: expected no duplicate, got ["a",1] twice'],
      [{ ...valid, actor: alice }, 'actor', 0, 'decider "reserve": intents[1].actor: expected one of aggregate, reason, patch, triggers, encrypt, got an unknown property'],
      ['not an intent', '', 0, 'decider "reserve": intents[1]: expected an intent { aggregate, reason, patch }, got "not an intent"'],
    ];
    for (const [intent, path, , message] of cases) {
      const { log, commands } = await service([deciding(() => [valid, loose<Intent>(intent)], [['counter', 1]], 'reserve')]);
      const error = await rejection(commands.execute('reserve', {}, as));
      expect(error).toBeInstanceOf(InvalidEventError);
      expect(error).toMatchObject({ code: 'INVALID_EVENT', index: 1, path });
      expect((error as Error).message).toBe(message);
      expect(await log.head()).toBe(0);
    }
  });

  it('throws InvalidEventError naming the decider for an intent larger than maxEventBytes', async () => {
    const { commands } = await service([deciding(() => [{ aggregate: ['counter', 1], reason: 'big', patch: [{ op: 'add', path: '/x', value: 'x'.repeat(2000) }] }], [['counter', 1]], 'big')], { maxEventBytes: 1000 });
    const error = await rejection(commands.execute('big', {}, as));
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as Error).message).toMatch(/^decider "big": intents\[0\]: expected an event of at most 1000 bytes/);
  });
});

describe('arguments', () => {
  it('throws InvalidArgumentError for an unknown command name, naming the known ones', async () => {
    const { commands } = await service([counter(), counter([], 'decrement')]);
    for (const name of ['reserve', '', 42, undefined]) {
      const error = await rejection(commands.execute(loose(name), {}, as));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/^name: expected one of "increment", "decrement", got /);
    }
  });

  it('throws InvalidArgumentError for bad execute options, before reading or writing anything, and leaves them as they were', async () => {
    let decided = 0;
    const { log, commands } = await service([deciding(() => { decided++; return []; })]);
    const cases: [unknown, RegExp][] = [
      [undefined, /^options: expected \{ actor, source/],
      [{ source: 'test' }, /^options\.actor: expected an identity/],
      [{ actor: ['user'], source: 'test' }, /^options\.actor: expected an identity/],
      [{ actor: alice }, /^options\.source: expected a non-empty string, got undefined/],
      [{ actor: alice, source: '' }, /^options\.source: expected a non-empty string/],
      [{ ...as, base: -1 }, /^options\.base: expected an integer >= 0, got -1/],
      [{ ...as, base: 1.5 }, /^options\.base: expected an integer >= 0/],
      [{ ...as, resolved: [1] }, /^options\.resolved: expected only with options\.base/],
      [{ ...as, base: 0, resolved: [1, 1] }, /^options\.resolved\[1\]: expected no duplicate/],
      [{ ...as, merge: 'theirs' }, /^options\.merge: expected "none" or "disjoint-paths"/],
      [{ ...as, dryRun: 'yes' }, /^options\.dryRun: expected a boolean/],
      [{ ...as, idempotencyKey: '' }, /^options\.idempotencyKey: expected a non-empty string/],
      [{ ...as, retry: 3 }, /^options\.retry: expected one of actor, source/],
    ];
    for (const [options, message] of cases) {
      const copy = structuredClone(options);
      const error = await rejection(commands.execute('test', {}, loose(options)));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(message);
      expect(options).toEqual(copy);
    }
    expect(decided).toBe(0);
    expect(await log.head()).toBe(0);
  });

  it('throws InvalidArgumentError for a bad decider definition', () => {
    const cases: [unknown, RegExp][] = [
      [undefined, /^definition: expected \{ name, aggregates, decide \}, got undefined/],
      [{ aggregates: () => [], decide: () => [] }, /^definition\.name: expected a non-empty string, got undefined/],
      [{ name: '', aggregates: () => [], decide: () => [] }, /^definition\.name: expected a non-empty string/],
      [{ name: 'x', decide: () => [] }, /^definition\.aggregates: expected a function, got undefined/],
      [{ name: 'x', aggregates: () => [], decide: 'no' }, /^definition\.decide: expected a function, got "no"/],
    ];
    for (const [definition, message] of cases) {
      expect(() => decider(loose<Decider<unknown>>(definition))).toThrow(InvalidArgumentError);
      expect(() => decider(loose<Decider<unknown>>(definition))).toThrow(message);
    }
  });

  it('returns a frozen decider of name, aggregates and decide, calling them on the definition', async () => {
    const definition = {
      name: 'helpful',
      kind: 'counter',
      aggregates(this: { kind: string }, id: number): Identity[] { return [[this.kind, id]]; },
      decide(): Intent[] { return []; },
    };
    const checked = decider<number>(definition);
    expect(Object.isFrozen(checked)).toBe(true);
    expect(Object.keys(checked)).toEqual(['name', 'aggregates', 'decide']);
    expect(checked.aggregates(3)).toEqual([['counter', 3]]);
  });

  it('throws InvalidArgumentError for bad service options', async () => {
    const { log } = await tempLog();
    const cases: [unknown, unknown, RegExp][] = [
      [{}, { deciders: [counter()] }, /^log: expected a log opened by openLog/],
      [log, undefined, /^options: expected \{ deciders, retry\? \}/],
      [log, { deciders: [] }, /^options\.deciders: expected a non-empty array of deciders, got an empty array/],
      [log, { deciders: counter() }, /^options\.deciders: expected a non-empty array/],
      [log, { deciders: [counter(), { name: 'x' }] }, /^options\.deciders\[1\]\.aggregates: expected a function/],
      [log, { deciders: [counter(), counter()] }, /^options\.deciders\[1\]\.name: expected a name unique among the deciders, got "increment" twice/],
      [log, { deciders: [counter()], retry: 3 }, /^options\.retry: expected \{ attempts\?, minDelayMs\?, maxDelayMs\? \}/],
      [log, { deciders: [counter()], retry: { attempts: 0 } }, /^options\.retry\.attempts: expected an integer >= 1, got 0/],
      [log, { deciders: [counter()], retry: { attempts: 2.5 } }, /^options\.retry\.attempts: expected an integer >= 1/],
      [log, { deciders: [counter()], retry: { minDelayMs: -1 } }, /^options\.retry\.minDelayMs: expected a number of milliseconds >= 0, got -1/],
      [log, { deciders: [counter()], retry: { maxDelayMs: Infinity } }, /^options\.retry\.maxDelayMs: expected a number of milliseconds >= 0/],
      [log, { deciders: [counter()], retry: { minDelayMs: 50, maxDelayMs: 10 } }, /^options\.retry\.maxDelayMs: expected at least minDelayMs \(50\), got 10/],
      [log, { deciders: [counter()], retry: { tries: 3 } }, /^options\.retry\.tries: expected one of attempts, minDelayMs, maxDelayMs/],
      [log, { deciders: [counter()], extra: 1 }, /^options\.extra: expected one of deciders, retry/],
    ];
    for (const [target, options, message] of cases) {
      expect(() => createCommandService(loose(target), loose(options))).toThrow(InvalidArgumentError);
      expect(() => createCommandService(loose(target), loose(options))).toThrow(message);
    }
  });

  it('keeps the decider list as it was given: a later change to the array does not change the service', async () => {
    const { log } = await tempLog();
    const deciders: Decider<never>[] = [counter()];
    const commands = createCommandService(log, { deciders });
    deciders.pop();
    expect(await commands.execute('increment', { id: 1 }, as)).toMatchObject({ status: 'ok' });
  });

  it('shows only execute on the service it returns', async () => {
    const { commands } = await service([counter()]);
    expect(Object.keys(commands)).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.getPrototypeOf(commands))).toEqual(['constructor', 'execute']);
    const results: CommandService = commands;
    expect(typeof results.execute).toBe('function');
  });

  it('throws RejectedError for an empty reason, which decide then turns into a CommandError', async () => {
    expect(() => new RejectedError('')).toThrow(InvalidArgumentError);
    const { commands } = await service([deciding(() => { throw new RejectedError(''); })]);
    const error = await rejection(commands.execute('test', {}, as));
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).cause).toBeInstanceOf(InvalidArgumentError);
  });

  it('throws LogClosedError after the log is closed', async () => {
    const { log, commands } = await service([counter()]);
    await log.close();
    expect(await rejection(commands.execute('increment', { id: 1 }, as))).toMatchObject({ code: 'LOG_CLOSED' });
  });
});

describe('across processes', () => {
  it('loses no update: of concurrent executes from several processes on one counter, without a base, the count equals the ok results', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ children: fc.integer({ min: 2, max: 3 }), executes: fc.integer({ min: 10, max: 30 }), inFlight: fc.integer({ min: 1, max: 4 }), attempts: fc.integer({ min: 1, max: 4 }) }),
        async ({ children, executes, inFlight, attempts }) => {
          const path = join(tempDir(), 'store');
          const writers = Array.from({ length: children }, () => spawnChild('command-child.ts', [path, String(executes), String(inFlight), String(attempts)]));
          for (const writer of writers) expect(await writer.line()).toBe('ready');
          for (const writer of writers) writer.send('go');
          const reports = await Promise.all(writers.map(async (writer) => JSON.parse(await writer.line()) as { ok: number; conflict: number; other: number; attempts: number[] }));
          for (const writer of writers) expect((await writer.exited).code).toBe(0);

          const ok = reports.reduce((sum, r) => sum + r.ok, 0);
          expect(reports.reduce((sum, r) => sum + r.ok + r.conflict, 0)).toBe(children * executes);
          expect(reports.every((r) => r.other === 0 && r.attempts.every((a) => a >= 1 && a <= attempts))).toBe(true);
          const log = await openLog({ path });
          try {
            expect((await log.state(['counter', 'shared'])).state).toEqual(ok === 0 ? {} : { n: ok });
            expect(await log.head()).toBe(ok);
          } finally {
            await log.close();
          }
        },
      ),
      { numRuns: 4 },
    );
  });
});
