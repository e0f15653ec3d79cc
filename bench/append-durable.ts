/**
 * One durable append at a time: a single-event `append`, awaited before the next. Raw baseline:
 * one `root.transactionSync` per event with the same three puts (a durable, synchronous commit).
 * Also printed: raw one awaited async `root.transaction` per event, the mechanism `append` uses,
 * which tells how much of a gap is lmdb-js's async commit path rather than coherence.
 *
 * Each of the three writes one event in turn (the order rotating), so a burst of disk
 * contention from the machine's other users lands on all three alike; a commit here is an fsync.
 */
import type { Log, NewAction } from '../src/index.ts';
import type { Store } from '../src/storage/lmdb/layout.ts';
import {
  assertOk, assertSameRecords, closeRawStore, emit, makeActions, note, now, openBenchLog, openRawStore, preEncode, quantile,
  rawPut, round, type Bench, type RawWrite,
} from './support.ts';

const TARGET_RATIO = 0.8;

type Side = 'coherence' | 'rawSync' | 'rawAsync';
const ORDERS: readonly (readonly Side[])[] = [
  ['coherence', 'rawSync', 'rawAsync'], ['rawSync', 'rawAsync', 'coherence'], ['rawAsync', 'coherence', 'rawSync'],
  ['coherence', 'rawAsync', 'rawSync'], ['rawSync', 'coherence', 'rawAsync'], ['rawAsync', 'rawSync', 'coherence'],
];

export const appendDurable: Bench = {
  name: 'append-durable',
  description: 'one single-event append at a time vs one raw transactionSync per event',
  async run(context) {
    const count = context.scaled(1500, 150);
    const warm = 100;
    const actions = makeActions(warm + count);
    const { writes } = preEncode(actions);
    const dirs = [context.tempDir(), context.tempDir(), context.tempDir()] as const;
    const log: Log = await openBenchLog(dirs[0]);
    const syncStore: Store = openRawStore(dirs[1]);
    const asyncStore: Store = openRawStore(dirs[2]);
    const times: Record<Side, number[]> = { coherence: [], rawSync: [], rawAsync: [] };
    const write = async (side: Side, i: number): Promise<number> => {
      const seq = i + 1;
      const started = now();
      if (side === 'coherence') assertOk(await log.append([actions[i] as NewAction], { base: i }), 'a durable append');
      else if (side === 'rawSync') syncStore.root.transactionSync(() => rawPut(syncStore, seq, writes[i] as RawWrite));
      else await asyncStore.root.transaction(() => rawPut(asyncStore, seq, writes[i] as RawWrite));
      return now() - started;
    };
    try {
      note(`append-durable: ${warm} warm-up events, then ${count} per side, interleaved`);
      for (let i = 0; i < warm + count; i++) {
        for (const side of ORDERS[i % ORDERS.length] as readonly Side[]) {
          const ms = await write(side, i);
          if (i >= warm) times[side].push(ms);
        }
      }
    } finally {
      await log.close();
      await closeRawStore(syncStore);
      await closeRawStore(asyncStore);
    }
    await assertSameRecords(dirs[0], writes);
    for (const dir of dirs) context.remove(dir);
    const perS = (side: Side) => (times[side].length * 1000) / times[side].reduce((a, b) => a + b, 0);
    const ratio = perS('coherence') / perS('rawSync');
    emit({
      bench: 'append-durable',
      events: count,
      coherence_per_s: round(perS('coherence')),
      raw_per_s: round(perS('rawSync')),
      ratio: round(ratio, 3),
      raw_async_per_s: round(perS('rawAsync')),
      ratio_to_raw_async: round(perS('coherence') / perS('rawAsync'), 3),
      p50_ms: { coherence: round(quantile(times.coherence, 0.5), 3), raw: round(quantile(times.rawSync, 0.5), 3), raw_async: round(quantile(times.rawAsync, 0.5), 3) },
      target: `>=${TARGET_RATIO}x raw transactionSync`,
      met: ratio >= TARGET_RATIO,
    });
  },
};
