import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Identity, Log, NewEvent, Operation, Projection, ProjectionOptions } from '../../src/index.ts';
import { appendOk, applyAsUnit, entriesOf, foldByHand, newMasterKey, sorted, statesOf } from '../support/projection-fixtures.ts';
import { action, effect } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const AGGREGATES: Identity[] = [['account', 1], ['account', 2], ['user', 'ann'], ['user', 'ben']];
const CONSENTS: Identity[] = [['consent', 'news'], ['consent', 'ads']];
const KEYS = 3;

// ---- random steps ------------------------------------------------------------------------------

const value = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constantFrom('x', 'y', 'secret-value'), fc.constant({ city: 'Leeds' }));
const path = fc.constantFrom('/name', '/email', '/profile', '/profile/city', '/tags', '/tags/0', '/tags/-');
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), path, value }),
  fc.record({ op: fc.constant('add' as const), path: fc.constant('/tags'), value: fc.constant([] as unknown[]) }),
  fc.record({ op: fc.constant('replace' as const), path, value }),
  fc.record({ op: fc.constant('remove' as const), path }),
  fc.record({ op: fc.constant('test' as const), path, value }),
);

interface RandomAction {
  type: 'action';
  aggregate: number;
  patch: Operation[];
  consent: number | null;
  /** Encrypt with key `key` (its current generation), all valued operations or only some paths. */
  encrypt: { key: number; paths: string[] | null } | null;
}
interface RandomEffect {
  type: 'effect';
  /** A consent, or (as a raw effect) the current generation of a key. */
  trigger: { consent: number } | { key: number };
}
type Step =
  | { type: 'append'; events: (RandomAction | RandomEffect)[] }
  | { type: 'shred'; key: number }
  | { type: 'catchUp'; projections: number[] };

const randomAction: fc.Arbitrary<RandomAction> = fc.record({
  type: fc.constant('action' as const),
  aggregate: fc.integer({ min: 0, max: AGGREGATES.length - 1 }),
  patch: fc.array(operation, { minLength: 1, maxLength: 3 }),
  consent: fc.option(fc.integer({ min: 0, max: CONSENTS.length - 1 })),
  encrypt: fc.option(fc.record({
    key: fc.integer({ min: 0, max: KEYS - 1 }),
    paths: fc.option(fc.constantFrom(['/email'], ['/email', '/profile'], ['/tags'])),
  })),
});
const randomEffect: fc.Arbitrary<RandomEffect> = fc.record({
  type: fc.constant('effect' as const),
  trigger: fc.oneof(
    fc.record({ consent: fc.integer({ min: 0, max: CONSENTS.length - 1 }) }),
    fc.record({ key: fc.integer({ min: 0, max: KEYS - 1 }) }),
  ),
});
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: fc.constant('append' as const), events: fc.array(fc.oneof({ weight: 5, arbitrary: randomAction }, { weight: 1, arbitrary: randomEffect }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('shred' as const), key: fc.integer({ min: 0, max: KEYS - 1 }) }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('catchUp' as const), projections: fc.subarray([0, 1, 2, 3], { minLength: 1 }) }) },
);

// ---- the projections under test and their oracles -----------------------------------------------

interface Tally {
  actions: number;
  seqs: number[];
}

const tally: ProjectionOptions<Tally> = {
  init: () => ({ actions: 0, seqs: [] }),
  apply: (state, event) => {
    state.actions++;
    state.seqs.push(event.seq);
    return state;
  },
};

interface Subject {
  name: string;
  options: ProjectionOptions<unknown>;
  /** What the projection's states must be now, worked out by hand from `log.read()`. */
  oracle(log: Log): Promise<Map<string, unknown>>;
}

/** Folds by hand what a projection started at `from` holds: see SPEC 6 and issue 4. */
async function foldFrom(log: Log, from: number): Promise<Map<string, unknown>> {
  const full = await foldByHand(log);
  const touched = new Set<string>();
  const seen = new Set<string>();
  for await (const event of log.read({ replay: false })) {
    if ('action' in event) seen.add(JSON.stringify(event.action.aggregate));
    if (event.seq < from) continue;
    // After `from`, an aggregate is held if it has an action, or an effect affects it: then the
    // projection re-folds it from all its actions, and what follows the effect folds onto that.
    if ('action' in event) touched.add(JSON.stringify(event.action.aggregate));
  }
  const affected = new Set<string>();
  for (const aggregate of AGGREGATES) {
    for await (const event of log.read({ from, aggregates: [aggregate] })) {
      if ('effect' in event && event.seq >= from) affected.add(JSON.stringify(aggregate));
    }
  }
  const states = new Map<string, unknown>();
  for (const key of seen) {
    if (affected.has(key)) states.set(key, full.get(key));
    else if (touched.has(key)) {
      let state: unknown = {};
      for await (const event of log.read({ from, aggregates: [JSON.parse(key) as Identity], replay: false })) {
        if ('action' in event) state = applyAsUnit(state, event.action.patch);
      }
      states.set(key, state);
    }
  }
  return states;
}

async function tallyByHand(log: Log): Promise<Map<string, unknown>> {
  const states = new Map<string, Tally>();
  for await (const event of log.read({ replay: false })) {
    if (!('action' in event)) continue;
    const key = JSON.stringify(event.action.aggregate);
    const state = states.get(key) ?? { actions: 0, seqs: [] };
    states.set(key, { actions: state.actions + 1, seqs: [...state.seqs, event.seq] });
  }
  return states;
}

function subjects(from: number): Subject[] {
  return [
    { name: 'all', options: {}, oracle: (log) => foldByHand(log) },
    { name: 'users', options: { kinds: ['user'] }, oracle: (log) => foldByHand(log, (aggregate) => aggregate[0] === 'user') },
    { name: 'tally', options: tally as ProjectionOptions<unknown>, oracle: tallyByHand },
    { name: 'recent', options: { from }, oracle: (log) => foldFrom(log, from) },
  ];
}

// ---- running the steps ---------------------------------------------------------------------------

async function run(engine: TestEngine, steps: Step[], from: number): Promise<void> {
  const { log } = await engine.tempLog({ masterKey: newMasterKey(), clock, redact: ({ path: at }) => `<erased ${at}>` });
  try {
    const generation = Array<number>(KEYS).fill(0);
    const keyOf = (index: number): Identity => ['key', `k${index}.${generation[index]}`];
    const tested = subjects(from);
    const projections: Projection<unknown>[] = tested.map(({ name, options }) => log.projection(name, options));
    const check = async (index: number) => {
      const subject = tested[index] as Subject;
      expect(sorted(await statesOf(projections[index] as Projection<unknown>)), subject.name).toEqual(sorted(await subject.oracle(log)));
    };

    for (const current of steps) {
      if (current.type === 'append') {
        const events: NewEvent[] = current.events.map((event) => {
          if (event.type === 'effect') {
            return effect('consent' in event.trigger ? (CONSENTS[event.trigger.consent] as Identity) : keyOf(event.trigger.key));
          }
          const extra: Parameters<typeof action>[2] = {};
          if (event.consent !== null) extra.triggers = [CONSENTS[event.consent] as Identity];
          if (event.encrypt !== null) {
            extra.encrypt = event.encrypt.paths === null ? { key: keyOf(event.encrypt.key) } : { key: keyOf(event.encrypt.key), paths: event.encrypt.paths };
          }
          return action(AGGREGATES[event.aggregate] as Identity, event.patch, extra);
        });
        await appendOk(log, events);
      } else if (current.type === 'shred') {
        await log.keys.shred(keyOf(current.key));
        generation[current.key] = (generation[current.key] as number) + 1;
      } else {
        const head = await log.head();
        for (const index of current.projections) {
          const result = await (projections[index] as Projection<unknown>).catchUp();
          expect(result.to).toBe(tested[index]?.name === 'recent' ? Math.max(head, from - 1) : head);
          await check(index);
        }
      }
    }

    // Caught up in whatever chunks the steps gave, each equals a clean rebuild and the oracle.
    for (const [index, subject] of tested.entries()) {
      const projection = projections[index] as Projection<unknown>;
      await projection.catchUp();
      await check(index);
      const clean = log.projection(`${subject.name}-clean`, subject.options);
      await clean.rebuild();
      expect(await entriesOf(clean), subject.name).toEqual(await entriesOf(projection));
      expect(await clean.position()).toBe(await projection.position());
      const incremental = await entriesOf(projection);
      await projection.rebuild();
      expect(await entriesOf(projection), subject.name).toEqual(incremental);
    }
  } finally {
    await log.close();
  }
}

export function projectionProperties(engine: TestEngine): void {
  describe('projections of random logs with random effects', () => {
    it('give, caught up in random chunks, the same states as one rebuild and as folding each aggregate by hand', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 12 }), (steps, from) => run(engine, steps, from)),
        { numRuns: 25 },
      );
    });

    it('forget every shredded value: no state holds a value encrypted under a destroyed key', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.stringMatching(/^[a-z0-9]{1,6}$/), { minLength: 1, maxLength: 6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), async (names, shredded) => {
          const { log } = await engine.tempLog({ masterKey: newMasterKey(), clock });
          try {
            const projection = log.projection('people');
            await projection.catchUp();
            const secrets = names.map((name, i) => `secret-${i}-${name}-${'z'.repeat(8)}`);
            for (const [i, secret] of secrets.entries()) {
              await appendOk(log, [action(['person', i], [{ op: 'add', path: '/secret', value: secret }, { op: 'add', path: '/n', value: i }], { encrypt: { key: ['key', i], paths: ['/secret'] } })]);
              if (i % 2 === 0) await projection.catchUp();
            }
            for (const [i] of secrets.entries()) if (shredded[i] === true) await log.keys.shred(['key', i]);
            await projection.catchUp();
            const everything = JSON.stringify(await entriesOf(projection));
            for (const [i, secret] of secrets.entries()) {
              expect(everything.includes(secret)).toBe(shredded[i] !== true);
              expect(await projection.get(['person', i])).toEqual({ secret: shredded[i] === true ? null : secret, n: i });
            }
          } finally {
            await log.close();
          }
        }),
        { numRuns: 10 },
      );
    });
  });
}
