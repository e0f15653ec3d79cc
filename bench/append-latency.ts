/**
 * Append latency does not grow with the log: single-event appends, awaited one at a time, on a
 * 10k-event store and on the shared 1M-event one, each on a probe aggregate with history and
 * with a base far behind the head (see `buildStore`), so each runs the conflict check from an
 * old base and succeeds. The two stores are measured alternately, sample by sample, so the
 * machine's other load hits both alike.
 *
 * Alongside, on byte-for-byte copies of the two stores: raw LMDB writing the same event (same
 * record, same index entries) in one awaited `root.transaction`, the mechanism `append` uses,
 * so growth that LMDB itself shows (a deeper B-tree, more pages per commit) is told apart from
 * coherence's. And `conflicts(oldBase, probe)`: the index lookup alone, without the commit that
 * dominates an append's latency.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../src/index.ts';
import { recordHash } from '../src/log/record.ts';
import { lastSeq, type Store } from '../src/storage/lmdb/layout.ts';
import {
  assertOk, buildStore, closeRawStore, emit, makeAction, makeActions, note, now, openBenchLog, openRawStore, preEncode, quantile,
  rawPut, round, type Bench, type BenchContext, type BuiltStore,
} from './support.ts';

/** Probe aggregates per built store; each is used for one sample. */
export const PROBES = 2000;
const SMALL_EVENTS = 10_000;
const TARGET = 1.2;

interface Side {
  store: BuiltStore;
  log: Log;
  head: number;
  append: number[];
  conflicts: number[];
  raw: RawSide;
}

interface RawSide {
  store: Store;
  head: number;
  latency: number[];
}

/** A raw store on a copy of `built`'s file, taken while nothing has it open. */
function rawCopy(context: BenchContext, built: BuiltStore): RawSide {
  const dir = context.tempDir();
  copyFileSync(join(built.path, 'data.mdb'), join(dir, 'data.mdb'));
  const store = openRawStore(dir);
  return { store, head: lastSeq(store), latency: [] };
}

/** The raw write of probe `k`: encoded and chained untimed, then one awaited transaction. */
async function sampleRaw(side: RawSide, k: number): Promise<void> {
  const last = side.store.events.getBinary(side.head);
  if (last === undefined) throw new Error(`bench: raw copy lacks event ${side.head}`);
  const write = preEncode([probe(k)], Uint8Array.from(recordHash(last))).writes[0];
  if (write === undefined) throw new Error('bench: nothing encoded');
  const seq = ++side.head;
  const started = now();
  await side.store.root.transaction(() => rawPut(side.store, seq, write));
  side.latency.push(now() - started);
}

async function warmUp(side: Side, count: number): Promise<void> {
  // On bulk aggregates with base = head: warms the code paths, leaves the probes untouched.
  for (const event of makeActions(count, {}, side.head)) {
    assertOk(await side.log.append([event], { base: side.head }), 'a warm-up append');
    side.head++;
  }
}

function probe(k: number) {
  return makeAction(k, { kind: 'probe', prefix: 'p', aggregates: PROBES });
}

async function sampleAppend(side: Side, k: number): Promise<void> {
  const event = probe(k);
  const started = now();
  const result = await side.log.append([event], { base: side.store.oldBase });
  side.append.push(now() - started);
  assertOk(result, 'a probe append');
  side.head++;
}

async function sampleConflicts(side: Side, k: number): Promise<void> {
  const aggregate = probe(k).action.aggregate;
  const started = now();
  const theirs = await side.log.conflicts(side.store.oldBase, aggregate);
  side.conflicts.push(now() - started);
  if (theirs.length !== 1) throw new Error(`bench: expected the probe's one append after the old base, got ${theirs.length}`);
}

function figures(values: readonly number[], unit: number, digits: number) {
  return { p50: round(quantile(values, 0.5) * unit, digits), p99: round(quantile(values, 0.99) * unit, digits) };
}

export const appendLatency: Bench = {
  name: 'append-latency',
  description: 'single-append latency (p50, p99) on a 1M-event store vs a 10k-event store',
  async run(context) {
    const big = await context.bigStore();
    note(`append-latency: building the ${SMALL_EVENTS}-event store, copying both for raw`);
    const small = await buildStore(context.tempDir(), SMALL_EVENTS, PROBES);
    const raws = [rawCopy(context, small), rawCopy(context, big)] as const;
    const smallLog = await openBenchLog(small.path);
    // The fixture builder writes raw; coherence's own verify() vouches for what it wrote.
    const verified = await smallLog.verify();
    if (!verified.ok) throw new Error(`bench setup: the built store fails verify() at ${verified.seq}: ${verified.reason}`);
    const sides: [Side, Side] = [
      { store: small, log: smallLog, head: small.events, append: [], conflicts: [], raw: raws[0] },
      { store: big, log: await openBenchLog(big.path), head: big.events, append: [], conflicts: [], raw: raws[1] },
    ];
    try {
      note(`append-latency: warm-up, then ${PROBES} samples per store`);
      for (const side of sides) side.head = await side.log.head();
      for (const side of sides) await warmUp(side, 200);
      for (const side of sides) for (let k = 0; k < 50; k++) await sampleRaw(side.raw, PROBES + k);
      for (const side of sides) side.raw.latency.length = 0;
      for (let k = 0; k < PROBES; k++) {
        const [first, second] = k % 2 === 0 ? sides : [sides[1], sides[0]];
        await sampleAppend(first, k);
        await sampleAppend(second, k);
        await sampleRaw(second.raw, k);
        await sampleRaw(first.raw, k);
      }
      for (let k = 0; k < PROBES; k++) {
        const [first, second] = k % 2 === 0 ? sides : [sides[1], sides[0]];
        await sampleConflicts(first, k);
        await sampleConflicts(second, k);
      }
    } finally {
      for (const side of sides) await side.log.close();
      for (const raw of raws) await closeRawStore(raw.store);
    }
    context.remove(small.path);
    const [s, b] = sides;
    const smallAppend = figures(s.append, 1, 3);
    const bigAppend = figures(b.append, 1, 3);
    const p50Ratio = quantile(b.append, 0.5) / quantile(s.append, 0.5);
    const p99Ratio = quantile(b.append, 0.99) / quantile(s.append, 0.99);
    const rawSmall = s.raw.latency;
    const rawBig = b.raw.latency;
    emit({
      bench: 'append-latency',
      samples: PROBES,
      small_events: s.store.events,
      big_events: b.store.events,
      old_base_behind_head: { small: s.store.events - s.store.oldBase, big: b.store.events - b.store.oldBase },
      probe_history: { small: s.store.probeHistory, big: b.store.probeHistory },
      small_ms: smallAppend,
      big_ms: bigAppend,
      p50_ratio: round(p50Ratio, 3),
      p99_ratio: round(p99Ratio, 3),
      raw_small_ms: figures(rawSmall, 1, 3),
      raw_big_ms: figures(rawBig, 1, 3),
      raw_p50_ratio: round(quantile(rawBig, 0.5) / quantile(rawSmall, 0.5), 3),
      raw_p99_ratio: round(quantile(rawBig, 0.99) / quantile(rawSmall, 0.99), 3),
      conflicts_small_us: figures(s.conflicts, 1000, 1),
      conflicts_big_us: figures(b.conflicts, 1000, 1),
      target: `p50 and p99 at ${b.store.events} <= ${TARGET}x at ${s.store.events}`,
      met: p50Ratio <= TARGET && p99Ratio <= TARGET,
    });
  },
};
