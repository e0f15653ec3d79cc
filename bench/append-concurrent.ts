/**
 * 1000 concurrent single-event `append` calls (Promise.all), each with a base and a conflict
 * check: the base is the head when the round starts, so every append but the first of a round
 * runs the conflict check on an aggregate with history (one per aggregate of the round, so none
 * conflicts). Raw baseline: 1000 concurrent `root.transaction`s with the same puts; target
 * >= 0.5x raw (the median over rounds of coherence/raw within a round). Also printed: 1000
 * concurrent sets of plain async puts (which lmdb-js batches into one transaction), and the
 * first issue's absolute target.
 */
import type { Log, NewAction } from '../src/index.ts';
import { EMPTY, encodeLatest, type Store } from '../src/storage/lmdb/layout.ts';
import {
  assertOk, assertSameRecords, closeRawStore, emit, makeActions, median, note, now, openBenchLog, openRawStore, preEncode,
  rawLink, rawPut, round, type Bench, type RawWrite,
} from './support.ts';

const CONCURRENCY = 1000;
const TARGET_RATIO = 0.5;
const ABSOLUTE_TARGET = 60_000;

async function coherenceRound(log: Log, events: readonly NewAction[]): Promise<number> {
  const base = await log.head();
  const started = now();
  const results = await Promise.all(events.map((event) => log.append([event], { base })));
  const seconds = (now() - started) / 1000;
  for (const result of results) assertOk(result, 'a concurrent append');
  return events.length / seconds;
}

async function rawTransactionRound(store: Store, writes: readonly RawWrite[], next: { seq: number }): Promise<number> {
  const started = now();
  await Promise.all(writes.map((write) => store.root.transaction(() => rawPut(store, ++next.seq, write))));
  return writes.length / ((now() - started) / 1000);
}

async function rawPutRound(store: Store, writes: readonly RawWrite[], next: { seq: number }): Promise<number> {
  const started = now();
  await Promise.all(writes.map((write) => {
    const seq = ++next.seq;
    store.byAggregate.put([...write.aggregate, seq], EMPTY);
    store.latest.put(write.aggregate, encodeLatest(seq));
    rawLink(store, seq, write);
    return store.events.put(seq, write.record);
  }));
  return writes.length / ((now() - started) / 1000);
}

export const appendConcurrent: Bench = {
  name: 'append-concurrent',
  description: `${CONCURRENCY} concurrent single-event appends with a base and a conflict check`,
  async run(context) {
    const rounds = context.scaled(20, 4);
    const warm = 2;
    const total = (warm + rounds) * CONCURRENCY;
    // Round k appends to aggregates b0..b999 once each: history from the rounds before, none in this one.
    const actions = makeActions(total);
    const { writes } = preEncode(actions);
    const logDir = context.tempDir();
    const txDir = context.tempDir();
    const putDir = context.tempDir();
    const log = await openBenchLog(logDir);
    const txStore = openRawStore(txDir);
    const putStore = openRawStore(putDir);
    const txNext = { seq: 0 };
    const putNext = { seq: 0 };
    const coherence: number[] = [];
    const rawTx: number[] = [];
    const rawPuts: number[] = [];
    const pairRatios: number[] = [];
    try {
      note(`append-concurrent: ${warm} warm-up rounds, ${rounds} rounds of ${CONCURRENCY}`);
      for (let r = 0; r < warm + rounds; r++) {
        const slice = [r * CONCURRENCY, (r + 1) * CONCURRENCY] as const;
        const events = actions.slice(...slice);
        const raw = writes.slice(...slice);
        let c: number;
        let t: number;
        if (r % 2 === 0) {
          c = await coherenceRound(log, events);
          t = await rawTransactionRound(txStore, raw, txNext);
        } else {
          t = await rawTransactionRound(txStore, raw, txNext);
          c = await coherenceRound(log, events);
        }
        const p = await rawPutRound(putStore, raw, putNext);
        if (r < warm) continue;
        coherence.push(c);
        rawTx.push(t);
        rawPuts.push(p);
        pairRatios.push(c / t);
      }
    } finally {
      await log.close();
      await closeRawStore(txStore);
      await closeRawStore(putStore);
    }
    await assertSameRecords(logDir, writes);
    for (const dir of [logDir, txDir, putDir]) context.remove(dir);
    const coherencePerS = median(coherence);
    const ratio = median(pairRatios);
    emit({
      bench: 'append-concurrent',
      concurrency: CONCURRENCY,
      rounds,
      events: rounds * CONCURRENCY,
      coherence_per_s: round(coherencePerS),
      raw_per_s: round(median(rawTx)),
      ratio: round(ratio, 3),
      raw_puts_per_s: round(median(rawPuts)),
      absolute_target: `>=${ABSOLUTE_TARGET} events/s`,
      absolute_met: coherencePerS >= ABSOLUTE_TARGET,
      target: `>=${TARGET_RATIO}x raw`,
      met: ratio >= TARGET_RATIO,
    });
  },
};
