/**
 * `openLog` of the shared 1M-event store: nothing may be scanned at open. Timed from the call to
 * the resolved log, closed between tries; raw `open` + `openDB` of the same store alongside.
 */
import { openLog } from '../src/index.ts';
import { closeRawStore, emit, median, note, now, openRawStore, round, type Bench } from './support.ts';

const TARGET_MS = 50;
const TRIES = 15;

export const open: Bench = {
  name: 'open',
  description: 'openLog of the 1M-event store',
  async run(context) {
    const big = await context.bigStore();
    note(`open: ${TRIES} opens of a ${big.events}-event store`);
    const coherence: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < TRIES; i++) {
      let started = now();
      const log = await openLog({ path: big.path });
      coherence.push(now() - started);
      const head = await log.head();
      await log.close();
      if (head < big.events) throw new Error(`bench: the opened store has head ${head}, expected at least ${big.events}`);
      started = now();
      const store = openRawStore(big.path);
      raw.push(now() - started);
      await closeRawStore(store);
    }
    const medianMs = median(coherence);
    emit({
      bench: 'open',
      events: big.events,
      tries: TRIES,
      coherence_ms: round(medianMs, 2),
      coherence_first_ms: round(coherence[0] as number, 2),
      coherence_max_ms: round(Math.max(...coherence), 2),
      raw_ms: round(median(raw), 2),
      target: `<=${TARGET_MS} ms`,
      met: medianMs <= TARGET_MS && Math.max(...coherence) <= TARGET_MS,
    });
  },
};
