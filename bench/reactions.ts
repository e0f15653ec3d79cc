/**
 * Issue 12: process managers and notifiers, each against the baseline of the same work done
 * without them, in the same run.
 *
 *   reactions-process   a process manager emitting one command per event (each payment of an
 *                       order books on one of 10,000 ledgers: a decider reading and writing one
 *                       aggregate, whose history stays short), catching up 100,000 events
 *                       (scale 1), vs the same commands executed directly through the command
 *                       service, one at a time (the loop an application would write without a
 *                       manager; `concurrent_per_s` shows 100 at a time, for reference). The
 *                       manager's batches hold its state action, the command's action and the
 *                       idempotency key besides. Target: >= 0.5x direct.
 *   reactions-notifier  a notifier delivering 200,000 events (scale 1) to a no-op handler vs a
 *                       plain `read()` of the same events. Target: >= 0.5x read.
 *
 * Each side has its own store with the same events; rounds alternate which side goes first, and
 * `ratio` is the median over rounds of the ratio within a round.
 */
import { createCommandService, createNotifier, createProcessManager, decider, type Identity, type Log, type NewAction } from '../src/index.ts';
import { assertOk, emit, inTurn, makeActions, median, note, now, openBenchLog, round, type Bench, type BenchContext } from './support.ts';

const TARGET = 0.5;
const LEDGERS = 10_000;
const ORDERS = 20_000;

/** The command of the benchmark: one action on the ledger an order books to. */
const book = decider<{ order: number; seq: number }>({
  name: 'book',
  aggregates: ({ order }) => [['ledger', order % LEDGERS]],
  decide({ order, seq }, states) {
    const { entries = 0 } = states.get(['ledger', order % LEDGERS]) as { entries?: number };
    return [{ aggregate: ['ledger', order % LEDGERS], reason: 'booked', patch: [{ op: 'replace', path: '/entries', value: entries + 1 }, { op: 'replace', path: '/last', value: seq }] }];
  },
});

function payments(first: number, count: number): NewAction[] {
  return Array.from({ length: count }, (_, i) => ({
    source: 'bench',
    action: { reason: 'paid', actor: ['user', 'u0'] as Identity, aggregate: ['order', (first + i) % ORDERS] as Identity, patch: [{ op: 'add', path: '/paid', value: first + i }] },
  }));
}

function ledgers(): NewAction[] {
  return Array.from({ length: LEDGERS }, (_, k) => ({
    source: 'bench',
    action: { reason: 'opened', actor: ['user', 'u0'] as Identity, aggregate: ['ledger', k] as Identity, patch: [{ op: 'add', path: '/entries', value: 0 }, { op: 'add', path: '/last', value: 0 }] },
  }));
}

async function appendAll(log: Log, events: NewAction[]): Promise<void> {
  for (let i = 0; i < events.length; i += 1000) assertOk(await log.append(events.slice(i, i + 1000), { base: await log.head() }), 'the setup');
}

async function processBench(context: BenchContext): Promise<void> {
  const total = context.scaled(100_000, 2_000);
  const rounds = context.scale >= 0.5 ? 4 : 3;
  const perRound = Math.ceil(total / rounds);
  const managed = await openBenchLog(context.tempDir());
  const direct = await openBenchLog(context.tempDir());
  const concurrent = await openBenchLog(context.tempDir());
  const ratios: number[] = [];
  const managerRates: number[] = [];
  const directRates: number[] = [];
  const concurrentRates: number[] = [];
  try {
    for (const log of [managed, direct, concurrent]) await appendAll(log, ledgers());
    const manager = createProcessManager<{ paid: number }>(managed, 'bench', {
      kinds: ['order'],
      instance: (event) => ('action' in event ? (event.action.aggregate[1] as number) : undefined),
      init: () => ({ paid: 0 }),
      react: (state, event) => ({ state: { paid: state.paid + 1 }, commands: [{ name: 'book', command: { order: (event as { action: { aggregate: Identity } }).action.aggregate[1], seq: event.seq } }] }),
      commands: createCommandService(managed, { deciders: [book] }),
    });
    await manager.catchUp();
    const directCommands = createCommandService(direct, { deciders: [book] });
    const concurrentCommands = createCommandService(concurrent, { deciders: [book] });
    note(`reactions-process: ${rounds} rounds of ${perRound} events`);
    for (let r = 0; r < rounds; r++) {
      const events = payments(r * perRound, perRound);
      const firstSeq = (await managed.head()) + 1;
      await appendAll(managed, events);
      // The same commands the manager will emit, for the direct sides (their seqs as the manager sees them).
      const commands = events.map((event, i) => ({ order: event.action.aggregate[1] as number, seq: firstSeq + i }));
      for (const log of [direct, concurrent]) await appendAll(log, events);
      const runManager = async () => {
        const started = now();
        const result = await manager.catchUp();
        if (result.commands !== perRound) throw new Error(`bench: the manager appended ${result.commands} commands, expected ${perRound}`);
        return perRound / ((now() - started) / 1000);
      };
      const runDirect = async () => {
        const started = now();
        for (const command of commands) assertOk(await directCommands.execute('book', command, { actor: ['$process', 'bench'], source: 'process:bench' }), 'an execute');
        return perRound / ((now() - started) / 1000);
      };
      const [m, d] = await inTurn(r, runManager, runDirect);
      const started = now();
      for (let i = 0; i < commands.length; i += 100) {
        for (const result of await Promise.all(commands.slice(i, i + 100).map((command) => concurrentCommands.execute('book', command, { actor: ['$process', 'bench'], source: 'process:bench' })))) assertOk(result, 'a concurrent execute');
      }
      concurrentRates.push(perRound / ((now() - started) / 1000));
      managerRates.push(m);
      directRates.push(d);
      ratios.push(m / d);
      note(`round ${r}: manager ${round(m)}/s, direct ${round(d)}/s`);
    }
    // Both wrote the same bookings.
    const probe: Identity = ['ledger', 7];
    if (JSON.stringify((await managed.state(probe)).state) !== JSON.stringify((await direct.state(probe)).state)) throw new Error('bench: reactions-process: the two sides disagree');
  } finally {
    await managed.close();
    await direct.close();
    await concurrent.close();
  }
  const ratio = median(ratios);
  emit({
    bench: 'reactions-process',
    rounds,
    events: rounds * perRound,
    manager_events_per_s: round(median(managerRates)),
    direct_per_s: round(median(directRates)),
    concurrent_per_s: round(median(concurrentRates)),
    ratio: round(ratio, 3),
    target: `>=${TARGET}x direct`,
    met: ratio >= TARGET,
  });
}

async function notifierBench(context: BenchContext): Promise<void> {
  const total = context.scaled(200_000, 5_000);
  const rounds = 5;
  const log = await openBenchLog(context.tempDir());
  const ratios: number[] = [];
  const notifierRates: number[] = [];
  const readRates: number[] = [];
  try {
    for (let i = 0; i < total; i += 1000) assertOk(await log.append(makeActions(Math.min(1000, total - i), {}, i), { base: await log.head() }), 'the setup');
    note(`reactions-notifier: ${rounds} rounds over ${total} events`);
    for (let r = 0; r < rounds; r++) {
      let handled = 0;
      const notifier = createNotifier(log, `bench-${r}`, { handle: async () => { handled++; } });
      const runNotifier = async () => {
        const started = now();
        await notifier.catchUp();
        if (handled !== total) throw new Error(`bench: the notifier handled ${handled}, expected ${total}`);
        return total / ((now() - started) / 1000);
      };
      const runRead = async () => {
        const started = now();
        let read = 0;
        for await (const _ of log.read()) read++;
        if (read !== total) throw new Error(`bench: read ${read}, expected ${total}`);
        return total / ((now() - started) / 1000);
      };
      const [n, d] = await inTurn(r, runNotifier, runRead);
      notifierRates.push(n);
      readRates.push(d);
      ratios.push(n / d);
    }
  } finally {
    await log.close();
  }
  const ratio = median(ratios);
  emit({
    bench: 'reactions-notifier',
    rounds,
    events: total,
    notifier_events_per_s: round(median(notifierRates)),
    read_per_s: round(median(readRates)),
    ratio: round(ratio, 3),
    target: `>=${TARGET}x read`,
    met: ratio >= TARGET,
  });
}

export const reactionsProcess: Bench = {
  name: 'reactions-process',
  description: 'a process manager emitting one command per event vs the same commands executed directly',
  run: processBench,
};

export const reactionsNotifier: Bench = {
  name: 'reactions-notifier',
  description: 'a notifier delivering to a no-op handler vs read() of the same events',
  run: notifierBench,
};

export const reactionBenches: readonly Bench[] = [reactionsProcess, reactionsNotifier];
