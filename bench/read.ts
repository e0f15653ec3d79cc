/**
 * `read()` of the whole shared 1M-event store, against raw LMDB: `getRange` over the events
 * database with msgpackr unpacking each body (coherence's own Packr, the same bytes).
 *
 * Memory, both sides: the peak heap and RSS over the level before the read (sampled every 5%
 * of the events), and the heap still live after a full GC at each quarter of the read (`retained`),
 * which is what "memory stays flat" means: garbage awaiting collection is not growth. The forced
 * GCs are not timed. RSS includes the store's pages that LMDB maps in as the read goes, which
 * grows with the store for raw LMDB as much as for coherence.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openLog } from '../src/index.ts';
import { packr } from '../src/model/msgpack.ts';
import { closeRawStore, emit, median, memory, note, now, openRawStore, round, type Bench } from './support.ts';

const TARGET = 0.7;
const HEADER_BYTES = 33;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Pass {
  perS: number;
  events: number;
  peakHeap: number;
  peakRss: number;
  /** Live heap over the level before the read, MiB, after a full GC at each quarter. */
  retained: number[];
}

/** Samples memory while a pass reads; `paused` is the time spent in forced GCs, not timed. */
class Meter {
  readonly before: { rss: number; heap: number };
  peakHeap: number;
  peakRss: number;
  readonly retained: number[] = [];
  paused = 0;
  /** Sample every this many events. */
  readonly every: number;

  constructor(readonly expected: number) {
    this.every = Math.max(1000, Math.floor(expected / 20));
    gc();
    this.before = memory();
    this.peakHeap = this.before.heap;
    this.peakRss = this.before.rss;
  }

  sample(events: number): void {
    const m = memory();
    this.peakHeap = Math.max(this.peakHeap, m.heap);
    this.peakRss = Math.max(this.peakRss, m.rss);
    if (events >= ((this.retained.length + 1) * this.expected) / 4) {
      const started = now();
      gc();
      this.retained.push(round(memory().heap - this.before.heap, 1));
      this.paused += now() - started;
    }
  }

  pass(elapsedMs: number, events: number): Pass {
    return {
      perS: events / ((elapsedMs - this.paused) / 1000),
      events,
      peakHeap: this.peakHeap - this.before.heap,
      peakRss: this.peakRss - this.before.rss,
      retained: this.retained,
    };
  }
}

async function coherencePass(path: string, expected: number): Promise<Pass> {
  const log = await openLog({ path });
  try {
    const meter = new Meter(expected);
    let events = 0;
    let check = 0;
    const started = now();
    for await (const event of log.read()) {
      check += event.seq;
      if (++events % meter.every === 0) meter.sample(events);
    }
    const elapsed = now() - started;
    if (check !== (events * (events + 1)) / 2) throw new Error('bench: read() did not yield seqs 1..n');
    return meter.pass(elapsed, events);
  } finally {
    await log.close();
  }
}

async function rawPass(path: string, expected: number): Promise<Pass> {
  const store = openRawStore(path);
  try {
    const meter = new Meter(expected);
    let events = 0;
    let check = 0;
    const started = now();
    for (const { key, value } of store.events.getRange({ start: 1 })) {
      const body = packr.unpack(value.subarray(HEADER_BYTES)) as unknown[];
      check += key + (body.length > 0 ? 0 : 1);
      if (++events % meter.every === 0) meter.sample(events);
    }
    const elapsed = now() - started;
    if (check !== (events * (events + 1)) / 2) throw new Error('bench: the raw read did not see seqs 1..n');
    return meter.pass(elapsed, events);
  } finally {
    await closeRawStore(store);
  }
}

export const read: Bench = {
  name: 'read',
  description: 'read() of the 1M-event store vs raw getRange + msgpackr unpack',
  async run(context) {
    const big = await context.bigStore();
    const expected = big.events;
    note('read: warm-up');
    // A first pass of each pulls the store into the page cache and warms the code.
    await rawPass(big.path, expected);
    await coherencePass(big.path, expected);
    const rounds = 2;
    const coherence: Pass[] = [];
    const raw: Pass[] = [];
    const pairRatios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      note(`read: round ${r + 1}/${rounds}`);
      let c: Pass;
      let w: Pass;
      if (r % 2 === 0) {
        c = await coherencePass(big.path, expected);
        w = await rawPass(big.path, expected);
      } else {
        w = await rawPass(big.path, expected);
        c = await coherencePass(big.path, expected);
      }
      coherence.push(c);
      raw.push(w);
      pairRatios.push(c.perS / w.perS);
    }
    const ratio = median(pairRatios);
    const worst = (passes: Pass[], pick: (p: Pass) => number) => round(Math.max(...passes.map(pick)), 1);
    emit({
      bench: 'read',
      events: (coherence[0] as Pass).events,
      rounds,
      coherence_per_s: round(median(coherence.map((p) => p.perS))),
      raw_per_s: round(median(raw.map((p) => p.perS))),
      ratio: round(ratio, 3),
      coherence_retained_mb_by_quarter: (coherence[0] as Pass).retained,
      raw_retained_mb_by_quarter: (raw[0] as Pass).retained,
      coherence_peak_heap_mb: worst(coherence, (p) => p.peakHeap),
      raw_peak_heap_mb: worst(raw, (p) => p.peakHeap),
      coherence_peak_rss_mb: worst(coherence, (p) => p.peakRss),
      raw_peak_rss_mb: worst(raw, (p) => p.peakRss),
      target: `>=${TARGET}x raw getRange + unpack; memory flat`,
      met: ratio >= TARGET && Math.max(...(coherence[0] as Pass).retained) < 16,
    });
  },
};
