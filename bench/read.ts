/**
 * `read()` of the whole shared 1M-event store, against raw LMDB: `getRange` over the events
 * database with msgpackr unpacking each body (coherence's own Packr, the same bytes). Memory is
 * sampled while reading: heap and RSS growth over the level before the read show it stays flat.
 */
import { packr } from '../src/log/record.ts';
import { openLog } from '../src/index.ts';
import { closeRawStore, emit, median, memory, note, now, openRawStore, round, type Bench } from './support.ts';

const TARGET = 0.7;
const HEADER_BYTES = 33;
const SAMPLE_EVERY = 50_000;

interface Pass {
  perS: number;
  events: number;
  heapGrowth: number;
  rssGrowth: number;
  /** Heap used over the level before the read, in MiB, after each quarter of the events. */
  heapByQuarter: number[];
}

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

class Peak {
  readonly before = memory();
  heap = this.before.heap;
  rss = this.before.rss;
  readonly quarters: number[] = [];
  constructor(readonly expected: number) {}
  sample(events: number): void {
    const m = memory();
    if (m.heap > this.heap) this.heap = m.heap;
    if (m.rss > this.rss) this.rss = m.rss;
    if (events >= ((this.quarters.length + 1) * this.expected) / 4) this.quarters.push(round(m.heap - this.before.heap, 1));
  }
  pass(perS: number, events: number): Pass {
    return { perS, events, heapGrowth: this.heap - this.before.heap, rssGrowth: this.rss - this.before.rss, heapByQuarter: this.quarters };
  }
}

async function coherencePass(path: string, expected: number): Promise<Pass> {
  const log = await openLog({ path });
  try {
    collect();
    const peak = new Peak(expected);
    let events = 0;
    let check = 0;
    const started = now();
    for await (const event of log.read()) {
      check += event.seq;
      if (++events % SAMPLE_EVERY === 0) peak.sample(events);
    }
    const seconds = (now() - started) / 1000;
    peak.sample(events);
    if (check !== (events * (events + 1)) / 2) throw new Error('bench: read() did not yield seqs 1..n');
    return peak.pass(events / seconds, events);
  } finally {
    await log.close();
  }
}

async function rawPass(path: string, expected: number): Promise<Pass> {
  const store = openRawStore(path);
  try {
    collect();
    const peak = new Peak(expected);
    let events = 0;
    let check = 0;
    const started = now();
    for (const { key, value } of store.events.getRange({ start: 1 })) {
      const body = packr.unpack(value.subarray(HEADER_BYTES)) as unknown[];
      check += key + (body.length > 0 ? 0 : 1);
      if (++events % SAMPLE_EVERY === 0) peak.sample(events);
    }
    const seconds = (now() - started) / 1000;
    peak.sample(events);
    if (check !== (events * (events + 1)) / 2) throw new Error('bench: the raw read did not see seqs 1..n');
    return peak.pass(events / seconds, events);
  } finally {
    await closeRawStore(store);
  }
}

export const read: Bench = {
  name: 'read',
  description: 'read() of the 1M-event store vs raw getRange + msgpackr unpack',
  async run(context) {
    const big = await context.bigStore();
    note('read: warm-up');
    // A first raw pass pulls the store into the page cache for both sides.
    const expected = big.events;
    await rawPass(big.path, expected);
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
    emit({
      bench: 'read',
      events: (coherence[0] as Pass).events,
      rounds,
      coherence_per_s: round(median(coherence.map((p) => p.perS))),
      raw_per_s: round(median(raw.map((p) => p.perS))),
      ratio: round(ratio, 3),
      coherence_heap_growth_mb: round(Math.max(...coherence.map((p) => p.heapGrowth)), 1),
      coherence_rss_growth_mb: round(Math.max(...coherence.map((p) => p.rssGrowth)), 1),
      raw_heap_growth_mb: round(Math.max(...raw.map((p) => p.heapGrowth)), 1),
      raw_rss_growth_mb: round(Math.max(...raw.map((p) => p.rssGrowth)), 1),
      coherence_heap_mb_by_quarter: (coherence[0] as Pass).heapByQuarter,
      target: `>=${TARGET}x raw getRange + unpack; memory flat`,
      met: ratio >= TARGET,
    });
  },
};
