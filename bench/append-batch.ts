/**
 * Batch append: `append` calls of `size` events each, awaited one after the other on a fresh
 * store (base = head, the single-writer case), against raw LMDB doing the same puts in one
 * `root.transaction` per `size` events, awaited the same way.
 */
import type { NewAction } from '../src/index.ts';
import {
  assertOk, assertSameRecords, chunk, closeRawStore, emit, makeActions, median, note, now, openBenchLog, openRawStore,
  patchBytes, preEncode, rawPut, round, type Bench, type BenchContext, type RawWrite,
} from './support.ts';

const ROUNDS = 5;

async function coherenceRound(context: BenchContext, batches: readonly NewAction[][], check?: readonly RawWrite[]): Promise<number> {
  const dir = context.tempDir();
  const log = await openBenchLog(dir);
  let head = 0;
  const started = now();
  for (const batch of batches) {
    const result = await log.append(batch, { base: head });
    assertOk(result, 'a batch append');
    head += batch.length;
  }
  const seconds = (now() - started) / 1000;
  await log.close();
  if (check !== undefined) await assertSameRecords(dir, check);
  context.remove(dir);
  return head / seconds;
}

async function rawRound(context: BenchContext, batches: readonly RawWrite[][]): Promise<number> {
  const dir = context.tempDir();
  const store = openRawStore(dir);
  let seq = 0;
  const started = now();
  for (const batch of batches) {
    await store.root.transaction(() => {
      for (const write of batch) rawPut(store, ++seq, write);
    });
  }
  const seconds = (now() - started) / 1000;
  await closeRawStore(store);
  context.remove(dir);
  return seq / seconds;
}

/**
 * @param size events per append call
 * @param events events per round at scale 1
 * @param target the target, as a ratio to raw (`ratio`) or absolute events/s (`absolute`)
 */
export function appendBatch(size: number, events: number, target: { ratio: number } | { absolute: number }): Bench {
  return {
    name: `append-batch-${size}`,
    description: `append of ${size} events per call vs raw puts in one transaction per ${size}`,
    async run(context) {
      const count = Math.ceil(context.scaled(events, size * 10) / size) * size;
      const actions = makeActions(count);
      const { writes } = preEncode(actions);
      const batches = chunk(actions, size);
      const rawBatches = chunk(writes, size);

      note(`append-batch-${size}: warm-up`);
      const warm = Math.max(1, Math.floor(batches.length / 10));
      await coherenceRound(context, batches.slice(0, warm), writes.slice(0, warm * size));
      await rawRound(context, rawBatches.slice(0, warm));

      const coherence: number[] = [];
      const raw: number[] = [];
      const pairRatios: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        note(`append-batch-${size}: round ${r + 1}/${ROUNDS}`);
        // Alternate who goes first, so a drift in the machine's load hits both sides alike.
        let c: number;
        let w: number;
        if (r % 2 === 0) {
          c = await coherenceRound(context, batches, r === 0 ? writes : undefined);
          w = await rawRound(context, rawBatches);
        } else {
          w = await rawRound(context, rawBatches);
          c = await coherenceRound(context, batches);
        }
        coherence.push(c);
        raw.push(w);
        pairRatios.push(c / w);
      }
      const coherencePerS = median(coherence);
      const rawPerS = median(raw);
      const ratio = median(pairRatios);
      const base = {
        bench: `append-batch-${size}`,
        events: count,
        batch: size,
        patch_bytes: patchBytes(actions[0] as NewAction),
        record_bytes: (writes[0] as RawWrite).record.length,
        rounds: ROUNDS,
        coherence_per_s: round(coherencePerS),
        raw_per_s: round(rawPerS),
        ratio: round(ratio, 3),
        coherence_rounds: coherence.map((x) => round(x)),
        raw_rounds: raw.map((x) => round(x)),
      };
      if ('ratio' in target) {
        emit({ ...base, target: `>=${target.ratio}x raw`, met: ratio >= target.ratio });
      } else {
        emit({ ...base, target: `>=${target.absolute} events/s`, met: coherencePerS >= target.absolute });
      }
    },
  };
}

export const appendBatch1000 = appendBatch(1000, 60_000, { ratio: 0.7 });
export const appendBatch100 = appendBatch(100, 30_000, { absolute: 75_000 });
