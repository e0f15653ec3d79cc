/**
 * Issue 11: the command service against `log.append` of the same actions, in the same run.
 *
 * The decider names one aggregate (['book', 'b<k>'], 1000 of them round-robin), reads its state
 * and decides exactly the action `append` gets in the baseline: action `i` of the standard
 * workload (a ~200-byte, three-operation patch, one trigger). So what `execute` adds over the
 * append is its state read (the aggregate's history is a few actions: the runs spread over the
 * 1000 aggregates, each seeded with one action so that every patch applies), building the
 * states and context, and checking the decider's output.
 *
 *   commands-sequential   `execute` awaited one at a time vs `append` on `await log.head()`.
 *   commands-concurrent   100 `execute`s in flight (one aggregate each) vs 100 appends in
 *                         flight based on the head when the wave starts.
 *
 * Two stores, one per side; rounds alternate which side goes first, and `ratio` is the median
 * over rounds of execute/append within a round. Target: >= 0.8x append.
 */
import { createCommandService, decider, type Intent, type Log, type NewAction } from '../src/index.ts';
import { assertOk, emit, inTurn, makeAction, median, note, now, openBenchLog, round, type Bench, type BenchContext } from './support.ts';

const AGGREGATES = 1000;
const IN_FLIGHT = 100;
const TARGET = 0.8;

/** The decider of the benchmark: reads the aggregate of action `i`, decides that action. */
const edit = decider<number>({
  name: 'edit',
  aggregates: (i) => [makeAction(i).action.aggregate],
  decide(i, states): Intent[] {
    const { action, triggers } = makeAction(i);
    states.get(action.aggregate);
    const intent: Intent = { aggregate: action.aggregate, reason: action.reason, patch: action.patch };
    if (triggers !== undefined) intent.triggers = triggers;
    return [intent];
  },
});

/** One action per aggregate adding `/title`, `/tags` and `/stock`. */
function seedActions(): NewAction[] {
  return Array.from({ length: AGGREGATES }, (_, k) => ({
    source: 'bench',
    action: { reason: 'seed', actor: ['user', 'u0'], aggregate: makeAction(k).action.aggregate, patch: [
      { op: 'add', path: '/title', value: '' }, { op: 'add', path: '/tags', value: [] }, { op: 'add', path: '/stock', value: 0 },
    ] },
  }));
}

interface Sides {
  execute: (i: number) => Promise<{ status: string }>;
  append: (i: number, base?: number) => Promise<{ status: string }>;
  appendLog: Log;
}

async function timed(ops: number, work: () => Promise<void>): Promise<number> {
  const started = now();
  await work();
  return ops / ((now() - started) / 1000);
}

function sequentialRound(sides: Sides, first: number, ops: number) {
  return {
    execute: () => timed(ops, async () => {
      for (let i = first; i < first + ops; i++) assertOk(await sides.execute(i), 'an execute');
    }),
    append: () => timed(ops, async () => {
      for (let i = first; i < first + ops; i++) assertOk(await sides.append(i), 'an append');
    }),
  };
}

function concurrentRound(sides: Sides, first: number, waves: number) {
  const ops = waves * IN_FLIGHT;
  const wave = (w: number) => Array.from({ length: IN_FLIGHT }, (_, k) => first + w * IN_FLIGHT + k);
  return {
    execute: () => timed(ops, async () => {
      for (let w = 0; w < waves; w++) for (const result of await Promise.all(wave(w).map((i) => sides.execute(i)))) assertOk(result, 'a concurrent execute');
    }),
    append: () => timed(ops, async () => {
      for (let w = 0; w < waves; w++) {
        const base = await sides.appendLog.head();
        for (const result of await Promise.all(wave(w).map((i) => sides.append(i, base)))) assertOk(result, 'a concurrent append');
      }
    }),
  };
}

async function measure(context: BenchContext, name: string, rounds: number, opsPerRound: number, round_: (sides: Sides, first: number) => { execute(): Promise<number>; append(): Promise<number> }): Promise<void> {
  const executeLog = await openBenchLog(context.tempDir());
  const appendLog = await openBenchLog(context.tempDir());
  // Each aggregate starts with the fields the workload's patches replace and append to, so every
  // patch applies when a state is folded (a patch that fails costs fast-json-patch an exception
  // per operation, which would make the state read look far dearer than it is in a real app).
  for (const log of [executeLog, appendLog]) assertOk(await log.append(seedActions(), { base: 0 }), 'the seed');
  const commands = createCommandService(executeLog, { deciders: [edit] });
  const sides: Sides = {
    execute: (i) => commands.execute('edit', i, { actor: makeAction(i).action.actor, source: 'bench' }),
    append: async (i, base) => appendLog.append([makeAction(i)], { base: base ?? (await appendLog.head()) }),
    appendLog,
  };
  const warm = 2;
  const executes: number[] = [];
  const appends: number[] = [];
  const ratios: number[] = [];
  try {
    note(`${name}: ${warm} warm-up rounds, ${rounds} rounds of ${opsPerRound}`);
    for (let r = 0; r < warm + rounds; r++) {
      const sides_ = round_(sides, r * opsPerRound);
      const [e, a] = await inTurn(r, sides_.execute, sides_.append);
      if (r < warm) continue;
      executes.push(e);
      appends.push(a);
      ratios.push(e / a);
    }
    // Both sides wrote the same actions: the same states, the same head.
    const probe = makeAction(0).action.aggregate;
    if (JSON.stringify(await executeLog.state(probe)) !== JSON.stringify(await appendLog.state(probe))) throw new Error(`bench: ${name}: the two sides disagree`);
  } finally {
    await executeLog.close();
    await appendLog.close();
  }
  const ratio = median(ratios);
  emit({
    bench: name,
    rounds,
    ops: rounds * opsPerRound,
    history_per_aggregate: round(1 + ((warm + rounds) * opsPerRound) / AGGREGATES, 1),
    execute_per_s: round(median(executes)),
    append_per_s: round(median(appends)),
    ratio: round(ratio, 3),
    target: `>=${TARGET}x append`,
    met: ratio >= TARGET,
  });
}

export const commandsSequential: Bench = {
  name: 'commands-sequential',
  description: 'execute of a one-aggregate decider, one at a time, vs append of the same actions',
  run: (context) => measure(context, 'commands-sequential', context.scaled(10, 4), 500, (sides, first) => sequentialRound(sides, first, 500)),
};

export const commandsConcurrent: Bench = {
  name: 'commands-concurrent',
  description: `execute of a one-aggregate decider, ${IN_FLIGHT} in flight, vs append of the same actions`,
  run: (context) => measure(context, 'commands-concurrent', context.scaled(10, 4), 5 * IN_FLIGHT, (sides, first) => concurrentRound(sides, first, 5)),
};

export const commandBenches: readonly Bench[] = [commandsSequential, commandsConcurrent];
