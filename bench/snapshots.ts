/**
 * Issue 11: snapshots. `state()` of an aggregate with 10,000 actions, snapshots every 100, against
 * `state()` of one with 100 actions folded in full (target <= 3x; without snapshots the long one
 * costs ~100x, shown too). The long aggregate gets 99 more actions after its snapshot, the most
 * a read folds before it takes the next one. And append throughput (100 events per call) with
 * snapshots on against off (target >= 0.9x). Rounds alternate which side goes first. Every
 * state() timed is the first of a freshly opened log, so it reads the store, not the fold an
 * open log keeps.
 */
import { openLog, type Identity, type Log, type NewAction } from '../src/index.ts';
import { assertOk, emit, fixedClock, median, note, now, round, type Bench, type BenchContext } from './support.ts';

const ROUNDS = 5;
const EVERY = 100;

function edit(aggregate: Identity, i: number): NewAction {
  return {
    source: 'bench',
    action: { reason: 'edit', actor: ['user', 'u'], aggregate, patch: [{ op: 'add', path: `/f${i % 50}`, value: `value ${i} of ${aggregate[1]}` }, { op: 'add', path: '/count', value: i }] },
  };
}

async function fill(log: Log, aggregate: Identity, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - i) }, (_, j) => edit(aggregate, i + j));
    assertOk(await log.append(batch, { base: await log.head() }), 'filling the store');
  }
}

/**
 * Median milliseconds of `times` calls of `state(aggregate)`, each the first of a log opened for
 * it (untimed): an open log keeps the folds it made of aggregates with nothing encrypted, so a
 * second call on the same log would read only what came after its first.
 */
async function stateMs(open: () => Promise<Log>, aggregate: Identity, times: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const log = await open();
    const started = now();
    await log.state(aggregate);
    samples.push(now() - started);
    await log.close();
  }
  return median(samples);
}

async function appendPerS(context: BenchContext, snapshots: boolean, events: number): Promise<number> {
  const dir = context.tempDir();
  const log = await openLog({ path: dir, clock: fixedClock, ...(snapshots ? { snapshots: { every: EVERY } } : {}) });
  const started = now();
  for (let i = 0; i < events; i += 100) {
    const batch = Array.from({ length: 100 }, (_, j) => edit(['book', `b${(i + j) % 500}`], i + j));
    assertOk(await log.append(batch, { base: i }), 'an append');
  }
  const perS = events / ((now() - started) / 1000);
  await log.close();
  context.remove(dir);
  return perS;
}

export const snapshots: Bench = {
  name: 'snapshots',
  description: 'state() of a 10k-action aggregate with snapshots vs a 100-action one; append with snapshots on vs off',
  async run(context) {
    const long: Identity = ['book', 'long'];
    const short: Identity = ['book', 'short'];
    const dir = context.tempDir();
    note('snapshots: building 10,100 actions');
    const writer = await openLog({ path: dir, clock: fixedClock });
    await fill(writer, long, 10_000);
    await fill(writer, short, 100);
    await writer.close();
    const withSnapshots = () => openLog({ path: dir, clock: fixedClock, snapshots: { every: EVERY } });
    const without = () => openLog({ path: dir, clock: fixedClock });
    // The first state() takes the snapshot at 10,000; then 99 actions that the reads fold after it.
    const first = await withSnapshots();
    await first.state(long);
    await first.close();
    const appender = await without();
    for (let i = 0; i < EVERY - 1; i++) assertOk(await appender.append([edit(long, 10_000 + i)], { base: await appender.head() }), 'an action after the snapshot');
    await appender.close();
    const ratios: number[] = [];
    const plainRatios: number[] = [];
    const figures = { long: [] as number[], short: [] as number[], longPlain: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ['long', 'short'] : ['short', 'long'];
      const got: Record<string, number> = {};
      for (const which of order) got[which] = which === 'long' ? await stateMs(withSnapshots, long, 20) : await stateMs(without, short, 20);
      got.longPlain = await stateMs(without, long, 3);
      figures.long.push(got.long as number);
      figures.short.push(got.short as number);
      figures.longPlain.push(got.longPlain);
      ratios.push((got.long as number) / (got.short as number));
      plainRatios.push(got.longPlain / (got.short as number));
    }
    const ratio = median(ratios);
    emit({
      bench: 'snapshot-state',
      actions: 10_000,
      every: EVERY,
      actions_after_snapshot: EVERY - 1,
      long_ms: round(median(figures.long), 3),
      short_ms: round(median(figures.short), 3),
      long_without_snapshots_ms: round(median(figures.longPlain), 2),
      ratio: round(ratio, 2),
      ratio_without_snapshots: round(median(plainRatios), 1),
      target: 'state() of 10k actions with snapshots every 100 <= 3x state() of 100 actions without',
      met: ratio <= 3,
    });

    const events = context.scaled(20_000, 5_000);
    const appendRatios: number[] = [];
    const on: number[] = [];
    const off: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      note(`snapshots: append round ${r + 1}/${ROUNDS}`);
      const first = r % 2 === 0;
      const a = first ? await appendPerS(context, true, events) : 0;
      const b = await appendPerS(context, false, events);
      const c = first ? a : await appendPerS(context, true, events);
      on.push(c);
      off.push(b);
      appendRatios.push(c / b);
    }
    const appendRatio = median(appendRatios);
    emit({
      bench: 'snapshot-append',
      events,
      per_call: 100,
      with_snapshots_per_s: round(median(on)),
      without_per_s: round(median(off)),
      ratio: round(appendRatio, 3),
      target: '>=0.9x append throughput without snapshots',
      met: appendRatio >= 0.9,
    });
  },
};
