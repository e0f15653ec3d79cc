/**
 * One durable append at a time: a single-event `append`, awaited before the next. Raw baseline:
 * one `root.transactionSync` per event with the same three puts (a durable, synchronous commit).
 * Also printed: raw one awaited async `root.transaction` per event, the mechanism `append` uses,
 * which shows how much of a gap is lmdb-js's async commit path rather than coherence.
 */
import type { Log, NewAction } from '../src/index.ts';
import type { Store } from '../src/log/store.ts';
import {
  assertOk, assertSameRecords, closeRawStore, emit, makeActions, median, note, now, openBenchLog, openRawStore, preEncode,
  rawPut, round, type Bench, type RawWrite,
} from './support.ts';

const TARGET_RATIO = 0.8;

async function coherenceRound(log: Log, events: readonly NewAction[], head: { seq: number }): Promise<number> {
  const started = now();
  for (const event of events) {
    assertOk(await log.append([event], { base: head.seq }), 'a durable append');
    head.seq++;
  }
  return events.length / ((now() - started) / 1000);
}

function rawSyncRound(store: Store, writes: readonly RawWrite[], next: { seq: number }): number {
  const started = now();
  for (const write of writes) store.root.transactionSync(() => rawPut(store, ++next.seq, write));
  return writes.length / ((now() - started) / 1000);
}

async function rawAsyncRound(store: Store, writes: readonly RawWrite[], next: { seq: number }): Promise<number> {
  const started = now();
  for (const write of writes) await store.root.transaction(() => rawPut(store, ++next.seq, write));
  return writes.length / ((now() - started) / 1000);
}

export const appendDurable: Bench = {
  name: 'append-durable',
  description: 'one single-event append at a time vs one raw transactionSync per event',
  async run(context) {
    const perRound = context.scaled(400, 100);
    const rounds = 5;
    const warm = Math.max(50, perRound >> 2);
    const actions = makeActions(warm + rounds * perRound);
    const { writes } = preEncode(actions);
    const dirs = [context.tempDir(), context.tempDir(), context.tempDir()] as const;
    const log = await openBenchLog(dirs[0]);
    const syncStore = openRawStore(dirs[1]);
    const asyncStore = openRawStore(dirs[2]);
    const head = { seq: 0 };
    const syncNext = { seq: 0 };
    const asyncNext = { seq: 0 };
    const coherence: number[] = [];
    const rawSync: number[] = [];
    const rawAsync: number[] = [];
    const pairRatios: number[] = [];
    try {
      note(`append-durable: warm-up ${warm}, ${rounds} rounds of ${perRound}`);
      await coherenceRound(log, actions.slice(0, warm), head);
      rawSyncRound(syncStore, writes.slice(0, warm), syncNext);
      await rawAsyncRound(asyncStore, writes.slice(0, warm), asyncNext);
      for (let r = 0; r < rounds; r++) {
        const from = warm + r * perRound;
        const events = actions.slice(from, from + perRound);
        const raw = writes.slice(from, from + perRound);
        let c: number;
        let s: number;
        if (r % 2 === 0) {
          c = await coherenceRound(log, events, head);
          s = rawSyncRound(syncStore, raw, syncNext);
        } else {
          s = rawSyncRound(syncStore, raw, syncNext);
          c = await coherenceRound(log, events, head);
        }
        rawAsync.push(await rawAsyncRound(asyncStore, raw, asyncNext));
        coherence.push(c);
        rawSync.push(s);
        pairRatios.push(c / s);
      }
    } finally {
      await log.close();
      await closeRawStore(syncStore);
      await closeRawStore(asyncStore);
    }
    await assertSameRecords(dirs[0], writes);
    for (const dir of dirs) context.remove(dir);
    const ratio = median(pairRatios);
    emit({
      bench: 'append-durable',
      events: rounds * perRound,
      rounds,
      coherence_per_s: round(median(coherence)),
      raw_per_s: round(median(rawSync)),
      ratio: round(ratio, 3),
      raw_async_per_s: round(median(rawAsync)),
      coherence_rounds: coherence.map((x) => round(x)),
      raw_rounds: rawSync.map((x) => round(x)),
      target: `>=${TARGET_RATIO}x raw transactionSync`,
      met: ratio >= TARGET_RATIO,
    });
  },
};
