/**
 * Issue 4: projections, with the raw-LMDB scan as baseline in the same run. The baseline is
 * `getRange` over the events database with coherence's `decodeBody` (Packr unpack of each body).
 *
 * One 1M-event store (at scale 1), built through `append` in calls of 10k events and shared by
 * the benchmarks that need 1M events: 999,900 plain actions of the workload of
 * bench/encryption-support.ts on 10k ['book', 'b<k>'] aggregates round-robin (the default JSON
 * Patch fold succeeds on each; `/email` in plaintext), and SUBJECTS subjects ['reader', 'r<s>'] of
 * 20 actions each, `/email` encrypted with the subject's own key, spread evenly through the log.
 *
 *   projection-catchup    `catchUp` of a new projection over the whole store (default fold) vs
 *                         the raw scan, alternating; target >= 0.5x raw. Alongside, coherence's
 *                         own reading of the store (`readPages`, no fold), which splits the
 *                         catch-up's time over the scan into reading and folding/writing.
 *   projection-encrypted  `catchUp` over 200k actions each with one field encrypted (10k keys,
 *                         the store of bench/encrypted-read.ts) vs the raw scan + decryption,
 *                         alternating; target >= 0.8x (issue 3's 60k events/s printed
 *                         alongside); the raw scan alone for context; and the same catch-up
 *                         writing its states unsealed (a core built here with sealing off),
 *                         target: sealed >= 0.8x unsealed; and the same split as above, with
 *                         the decryption floor for the scan.
 *   projection-rss        peak RSS of a child process doing a 1M-event catch-up (the kernel's
 *                         high-water mark, VmHWM), target <= 200 MB; the same child doing the
 *                         raw scan alongside, and the split into anonymous and file-backed
 *                         (LMDB's map) memory at the peak.
 *   projection-shred      shred one subject (its 20 actions), then `catchUp`, vs a full
 *                         `rebuild()` of the same projection; target <= 1% of the rebuild.
 *                         Runs last: it appends effects to the shared store.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Identity, Log, NewAction } from '../src/index.ts';
import {
  appendAll, expectedState, masterKey, openKeyedLog, rawDecodePass, rawDecryptPass, runIfMain, scaledTarget, workloadAction, workloadStore,
} from './encryption-support.ts';
import { decodeBody } from '../src/log/record.ts';
import { unlockStore } from '../src/keys/unlock.ts';
import { KeyCache } from '../src/log/key-cache.ts';
import { LogCore } from '../src/log/log-core.ts';
import { openProjection } from '../src/projections/projector.ts';
import { readPages } from '../src/log/read.ts';
import { prepareReadOptions } from '../src/model/validate.ts';
import { lmdbEngine } from '../src/storage/lmdb/lmdb-engine.ts';
import { closeRawStore, emit, fixedClock, median, note, now, openRawStore, round, type Bench, type BenchContext } from './support.ts';

const AGGREGATES = 10_000;
const SUBJECTS = 5;
const SUBJECT_ACTIONS = 20;
const ROUNDS = 3;
const SELF = fileURLToPath(import.meta.url);
const REPO = join(dirname(SELF), '..');

// ---------------------------------------------------------------------------------------------
// The shared 1M-event store

interface BigStore {
  path: string;
  events: number;
  /** Index (seq - 1) of every subject's actions, by subject. */
  subjectSlots: number[][];
  /** Index of the last plain event, whose aggregate's state is checked after each catch-up. */
  lastPlain: number;
  buildSeconds: number;
}

function subject(s: number): Identity {
  return ['reader', `r${s}`];
}

function bigLayout(events: number): { subjectAt: Map<number, number>; subjectSlots: number[][] } {
  const subjectAt = new Map<number, number>();
  const subjectSlots: number[][] = [];
  const total = SUBJECTS * SUBJECT_ACTIONS;
  for (let s = 0; s < SUBJECTS; s++) {
    const slots: number[] = [];
    for (let j = 0; j < SUBJECT_ACTIONS; j++) {
      // Interleaved: subject s's j-th action sits at the (j * SUBJECTS + s)-th of `total` even slots.
      const slot = Math.floor(((j * SUBJECTS + s + 0.5) * events) / total);
      subjectAt.set(slot, s);
      slots.push(slot);
    }
    subjectSlots.push(slots);
  }
  return { subjectAt, subjectSlots };
}

const bigStores = new WeakMap<BenchContext, Promise<BigStore>>();

function bigStore(context: BenchContext): Promise<BigStore> {
  let store = bigStores.get(context);
  if (store === undefined) {
    store = (async () => {
      const events = Math.max(20_000, Math.round(1_000_000 * context.scale));
      const path = context.tempDir('coherence-bench-projection-');
      const { subjectAt, subjectSlots } = bigLayout(events);
      note(`building the ${events}-event projection store (${SUBJECTS} encrypted subjects of ${SUBJECT_ACTIONS} actions)`);
      const eventAt = (i: number): NewAction => {
        const s = subjectAt.get(i);
        return s === undefined ? workloadAction(i, { aggregates: AGGREGATES }) : workloadAction(i, { aggregate: subject(s), encrypted: true });
      };
      const buildSeconds = await appendAll(path, events, eventAt);
      let lastPlain = events - 1;
      while (subjectAt.has(lastPlain)) lastPlain--;
      note(`built in ${buildSeconds} s`);
      emit({ bench: 'setup-projection-store', events, aggregates: AGGREGATES, subjects: SUBJECTS, seconds: buildSeconds, events_per_s: Math.round(events / buildSeconds) });
      return { path, events, subjectSlots, lastPlain, buildSeconds };
    })();
    bigStores.set(context, store);
  }
  return store;
}

/** Throws unless the projection's state of the last plain event's aggregate is what the fold gives. */
async function checkState(log: Log, name: string, index: number): Promise<void> {
  const state = await log.projection(name).get(['book', `b${index % AGGREGATES}`]);
  if (JSON.stringify(state) !== JSON.stringify(expectedState(index))) {
    throw new Error(`bench: projection ${name} holds ${JSON.stringify(state)} for b${index % AGGREGATES}, expected ${JSON.stringify(expectedState(index))}`);
  }
}

let projectionCounter = 0;

/** `catchUp` of a new projection over the whole store at `path`; events/s over the head. */
async function catchUpPass(path: string, expectedActions: number, check?: number): Promise<{ perS: number; seconds: number }> {
  const log = await openKeyedLog(path);
  try {
    const name = `bench-${process.pid}-${projectionCounter++}`;
    const head = await log.head();
    const started = now();
    const result = await log.projection(name).catchUp();
    const seconds = (now() - started) / 1000;
    if (result.actions < expectedActions || result.to !== head) {
      throw new Error(`bench: catchUp applied ${result.actions} actions up to ${result.to}, expected ${expectedActions} up to ${head}`);
    }
    if (check !== undefined) await checkState(log, name, check);
    return { perS: head / seconds, seconds };
  } finally {
    await log.close();
  }
}

/** Runs `passes` in an order rotating with `round`; returns each one's figure. */
async function rotate<K extends string>(round: number, passes: Record<K, () => Promise<number>>): Promise<Record<K, number>> {
  const keys = Object.keys(passes) as K[];
  const got = {} as Record<K, number>;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[(round + k) % keys.length] as K;
    got[key] = await passes[key]();
  }
  return got;
}

/** A core put together as openLog does (the bench's master key and clock), sealing states or not. */
async function openCore(path: string, sealStates: boolean): Promise<LogCore> {
  const storage = await lmdbEngine(path).open();
  const settings = { clock: fixedClock, redact: () => null, maxEventBytes: 1 << 20, keyTtl: undefined, sealStates, schemas: new Map(), snapshotEvery: undefined };
  return new LogCore(storage, settings, new KeyCache(await unlockStore(storage, masterKey())));
}

/**
 * The same catch-up as `catchUpPass` on a core put together here as openLog does, but with
 * `sealStates` off: the states are written as plain msgpack. The baseline of the sealing cost.
 */
async function unsealedCatchUpPass(path: string, expectedActions: number): Promise<{ perS: number; seconds: number }> {
  const core = await openCore(path, false);
  try {
    const head = await core.storage.head();
    const started = now();
    const result = await openProjection(core, `bench-unsealed-${process.pid}-${projectionCounter++}`, {}).catchUp();
    const seconds = (now() - started) / 1000;
    if (result.actions < expectedActions || result.to !== head) throw new Error(`bench: the unsealed catchUp applied ${result.actions} actions up to ${result.to}`);
    return { perS: head / seconds, seconds };
  } finally {
    await core.close();
  }
}

/**
 * What a catch-up does before it folds anything: coherence's own reading of the whole store, a
 * page at a time (`readPages`, as the projector reads: the engine's scan, decoding, the keys of
 * each page checked, events built with their values decrypted), on a core put together as
 * openLog does. Against the raw pass it is the cost of reading as coherence reads; against the
 * catch-up, the cost of folding and writing states.
 */
async function readPagesPass(path: string, expectedEvents: number): Promise<{ perS: number; seconds: number }> {
  const core = await openCore(path, true);
  try {
    const head = await core.storage.head();
    let events = 0;
    const started = now();
    for await (const page of readPages(core, prepareReadOptions({}), head)) events += page.events.length;
    const seconds = (now() - started) / 1000;
    if (events < expectedEvents) throw new Error(`bench: readPages read ${events} events, expected ${expectedEvents}`);
    return { perS: head / seconds, seconds };
  } finally {
    await core.close();
  }
}

/**
 * Where a catch-up's time goes beyond its raw floor, per event (medians of each pass): reading
 * as coherence reads (readPagesPass) against the floor, then folding and writing the states;
 * and the ratio the catch-up would reach if its reading cost no more than the floor, which
 * bounds what any speed-up of the reading alone can give.
 */
function decomposition(floorPerS: number, pagesPerS: number, catchUpPerS: number): Record<string, number> {
  const floor = 1e6 / floorPerS;
  const pages = 1e6 / pagesPerS;
  const catchUp = 1e6 / catchUpPerS;
  return {
    read_pages_us_per_event: round(pages, 2),
    reading_over_floor_us_per_event: round(pages - floor, 2),
    fold_and_write_us_per_event: round(catchUp - pages, 2),
    ratio_if_reading_cost_the_floor: round(floor / (floor + catchUp - pages), 3),
  };
}

// ---------------------------------------------------------------------------------------------
// catchUp over plain actions vs raw

export const projectionCatchUp: Bench = {
  name: 'projection-catchup',
  description: 'catchUp of a new projection over the 1M-event store (default fold, 10k aggregates) vs raw getRange + decodeBody',
  async run(context) {
    const big = await bigStore(context);
    note('projection-catchup: warm-up');
    await rawDecodePass(big.path);
    await catchUpPass(big.path, big.events, big.lastPlain);
    const catchUp: number[] = [];
    const raw: number[] = [];
    const pages: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      note(`projection-catchup: round ${r + 1}/${ROUNDS}`);
      const got = await rotate(r, {
        catchUp: async () => (await catchUpPass(big.path, big.events, big.lastPlain)).perS,
        raw: async () => (await rawDecodePass(big.path)).perS,
        pages: async () => (await readPagesPass(big.path, big.events)).perS,
      });
      catchUp.push(got.catchUp);
      raw.push(got.raw);
      pages.push(got.pages);
      ratios.push(got.catchUp / got.raw);
    }
    const ratio = median(ratios);
    emit({
      bench: 'projection-catchup',
      events: big.events,
      aggregates: AGGREGATES,
      rounds: ROUNDS,
      catchup_per_s: round(median(catchUp)),
      raw_per_s: round(median(raw)),
      ratio: round(ratio, 3),
      catchup_rounds: catchUp.map((x) => round(x)),
      raw_rounds: raw.map((x) => round(x)),
      catchup_us_per_event: round(1e6 / median(catchUp), 2),
      raw_us_per_event: round(1e6 / median(raw), 2),
      ...decomposition(median(raw), median(pages), median(catchUp)),
      load1: round(loadavg()[0] as number, 2),
      target: '>=0.5x raw getRange + decodeBody',
      met: ratio >= 0.5,
    });
  },
};

// ---------------------------------------------------------------------------------------------
// catchUp over encrypted actions

export const projectionEncrypted: Bench = {
  name: 'projection-encrypted',
  description: 'catchUp over 200k actions with one encrypted field each (10k keys), vs raw scans',
  async run(context) {
    const events = context.scaled(200_000, 20_000);
    const store = await workloadStore(context, events, true, AGGREGATES);
    note('projection-encrypted: warm-up');
    await rawDecodePass(store.path);
    await catchUpPass(store.path, events, events - 1);
    const perS = { catchUp: [] as number[], unsealed: [] as number[], raw: [] as number[], rawDecrypt: [] as number[], pages: [] as number[] };
    const sealedRatios: number[] = [];
    const floorRatios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      note(`projection-encrypted: round ${r + 1}/${ROUNDS}`);
      const got = await rotate(r, {
        catchUp: async () => (await catchUpPass(store.path, events, events - 1)).perS,
        unsealed: async () => (await unsealedCatchUpPass(store.path, events)).perS,
        raw: async () => (await rawDecodePass(store.path)).perS,
        rawDecrypt: async () => (await rawDecryptPass(store.path)).perS,
        pages: async () => (await readPagesPass(store.path, events)).perS,
      });
      perS.catchUp.push(got.catchUp);
      perS.unsealed.push(got.unsealed);
      perS.raw.push(got.raw);
      perS.rawDecrypt.push(got.rawDecrypt);
      perS.pages.push(got.pages);
      sealedRatios.push(got.catchUp / got.unsealed);
      floorRatios.push(got.catchUp / got.rawDecrypt);
    }
    const catchUpPerS = median(perS.catchUp);
    const sealedRatio = median(sealedRatios);
    const ratio = median(floorRatios);
    emit({
      bench: 'projection-sealed',
      events,
      rounds: ROUNDS,
      sealed_per_s: round(catchUpPerS),
      unsealed_per_s: round(median(perS.unsealed)),
      ratio: round(sealedRatio, 3),
      ratio_rounds: sealedRatios.map((x) => round(x, 3)),
      target: '>=0.8x the same catch-up writing plain states',
      met: sealedRatio >= 0.8,
    });
    emit({
      bench: 'projection-encrypted',
      events,
      aggregates: AGGREGATES,
      keys: AGGREGATES,
      rounds: ROUNDS,
      catchup_per_s: round(catchUpPerS),
      catchup_rounds: perS.catchUp.map((x) => round(x)),
      raw_decode_per_s: round(median(perS.raw)),
      raw_decode_decrypt_per_s: round(median(perS.rawDecrypt)),
      ratio: round(ratio, 3),
      catchup_us_per_event: round(1e6 / catchUpPerS, 2),
      raw_decode_decrypt_us_per_event: round(1e6 / median(perS.rawDecrypt), 2),
      ...decomposition(median(perS.rawDecrypt), median(perS.pages), catchUpPerS),
      sealing_us_per_event: round(1e6 / catchUpPerS - 1e6 / median(perS.unsealed), 2),
      absolute_target: '>=60000 events/s',
      absolute_met: catchUpPerS >= 60_000,
      ...scaledTarget(60_000, median(perS.raw), catchUpPerS),
      load1: round(loadavg()[0] as number, 2),
      target: '>=0.8x raw getRange + decodeBody + decrypt',
      met: ratio >= 0.8,
    });
  },
};

// ---------------------------------------------------------------------------------------------
// Peak RSS, in a child process

interface ChildReport {
  mode: 'catchup' | 'raw';
  events: number;
  seconds: number;
  /** MiB: VmHWM, VmRSS and its anonymous and file-backed parts after opening, before the work. */
  baseline_hwm_mb: number;
  baseline_rss_mb: number;
  baseline_anon_mb: number;
  baseline_file_mb: number;
  /** MiB: the kernel's high-water mark of RSS over the child's life. */
  peak_rss_mb: number;
  /** MiB, highest seen when sampled after each batch (catch-up) or every 5000 events (raw). */
  peak_anon_mb: number;
  peak_file_mb: number;
  peak_heap_mb: number;
}

function procStatus(): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const match = /^(\w+):\s+(\d+) kB/.exec(line);
    if (match !== null) figures[match[1] as string] = Number(match[2]) / 1024;
  }
  return figures;
}

/** The child: one catch-up (or raw scan) of the store, then a JSON report on stdout. */
async function rssChild(mode: 'catchup' | 'raw', path: string): Promise<void> {
  const peaks = { anon: 0, file: 0, heap: 0 };
  const sample = (): void => {
    const status = procStatus();
    peaks.anon = Math.max(peaks.anon, status.RssAnon ?? 0);
    peaks.file = Math.max(peaks.file, status.RssFile ?? 0);
    peaks.heap = Math.max(peaks.heap, process.memoryUsage().heapUsed / 1048576);
  };
  let events = 0;
  let started = 0;
  let baseline: Record<string, number>;
  if (mode === 'catchup') {
    const log = await openKeyedLog(path);
    const projection = log.projection(`rss-${process.pid}`);
    await log.head();
    baseline = procStatus();
    sample();
    started = now();
    const result = await projection.catchUp({ onProgress: sample });
    events = result.to;
    await log.close();
  } else {
    const store = openRawStore(path);
    baseline = procStatus();
    sample();
    started = now();
    for (const { key, value } of store.events.getRange({ start: 1 })) {
      decodeBody(value, key);
      if (++events % 5000 === 0) sample();
    }
    await closeRawStore(store);
  }
  const seconds = (now() - started) / 1000;
  sample();
  const report: ChildReport = {
    mode,
    events,
    seconds: round(seconds, 2),
    baseline_hwm_mb: round(baseline.VmHWM ?? 0, 1),
    baseline_rss_mb: round(baseline.VmRSS ?? 0, 1),
    baseline_anon_mb: round(baseline.RssAnon ?? 0, 1),
    baseline_file_mb: round(baseline.RssFile ?? 0, 1),
    peak_rss_mb: round(procStatus().VmHWM ?? 0, 1),
    peak_anon_mb: round(peaks.anon, 1),
    peak_file_mb: round(peaks.file, 1),
    peak_heap_mb: round(peaks.heap, 1),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function runChild(mode: 'catchup' | 'raw', path: string): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--rss-child', mode, path], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data: string) => (out += data));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench: the ${mode} child exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() as string) as ChildReport);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

const RSS_TARGET_MB = 200;

export const projectionRss: Bench = {
  name: 'projection-rss',
  description: 'peak RSS of a child process catching up a new projection over the 1M-event store',
  async run(context) {
    const big = await bigStore(context);
    const tries = 2;
    const catchUp: ChildReport[] = [];
    const raw: ChildReport[] = [];
    for (let t = 0; t < tries; t++) {
      note(`projection-rss: try ${t + 1}/${tries}`);
      catchUp.push(await runChild('catchup', big.path));
      raw.push(await runChild('raw', big.path));
    }
    for (const report of catchUp) if (report.events < big.events) throw new Error(`bench: the child caught up to ${report.events}, expected ${big.events}`);
    const worst = (reports: ChildReport[], key: keyof ChildReport) => Math.max(...reports.map((r) => r[key] as number));
    const peak = worst(catchUp, 'peak_rss_mb');
    emit({
      bench: 'projection-rss',
      events: big.events,
      tries,
      peak_rss_mb: peak,
      baseline_rss_mb: worst(catchUp, 'baseline_rss_mb'),
      baseline_anon_mb: worst(catchUp, 'baseline_anon_mb'),
      baseline_file_mb: worst(catchUp, 'baseline_file_mb'),
      peak_anon_mb: worst(catchUp, 'peak_anon_mb'),
      peak_file_mb: worst(catchUp, 'peak_file_mb'),
      peak_heap_mb: worst(catchUp, 'peak_heap_mb'),
      raw_peak_rss_mb: worst(raw, 'peak_rss_mb'),
      raw_baseline_rss_mb: worst(raw, 'baseline_rss_mb'),
      raw_peak_anon_mb: worst(raw, 'peak_anon_mb'),
      raw_peak_file_mb: worst(raw, 'peak_file_mb'),
      catchup_seconds: catchUp.map((r) => r.seconds),
      // Context: file-backed RSS is LMDB's map of the store file (page cache, shared, reclaimable),
      // as large for the raw scan; the anonymous part is what the catch-up itself holds.
      anon_within_target: worst(catchUp, 'peak_anon_mb') <= RSS_TARGET_MB,
      target: `peak RSS <=${RSS_TARGET_MB} MB`,
      met: peak <= RSS_TARGET_MB,
    });
  },
};

// ---------------------------------------------------------------------------------------------
// Shred one subject, then catchUp, vs a full rebuild

export const projectionShred: Bench = {
  name: 'projection-shred',
  description: 'shred one subject (20 encrypted actions) in the 1M-event store, then catchUp, vs a full rebuild()',
  async run(context) {
    const big = await bigStore(context);
    const log = await openKeyedLog(big.path);
    try {
      const name = `bench-shred-${process.pid}`;
      const projection = log.projection(name);
      note('projection-shred: first catch-up');
      await projection.catchUp();
      const rounds = Math.min(ROUNDS, SUBJECTS);
      const shredMs: number[] = [];
      const catchUpMs: number[] = [];
      const rebuildMs: number[] = [];
      const ratios: number[] = [];
      const catchUpRatios: number[] = [];
      let replayed = 0;
      for (let r = 0; r < rounds; r++) {
        note(`projection-shred: round ${r + 1}/${rounds}`);
        const who = subject(r);
        const before = (await projection.get(who)) as { email?: unknown } | undefined;
        if (typeof before?.email !== 'string') throw new Error(`bench: subject ${who[1]} has no plaintext email before the shred`);
        let started = now();
        await log.keys.shred(who, { reason: 'erasure request' });
        const shred = now() - started;
        started = now();
        const result = await projection.catchUp();
        const catchUp = now() - started;
        const after = (await projection.get(who)) as { email?: unknown; title?: unknown } | undefined;
        if (after?.email !== null || typeof after.title !== 'string') throw new Error(`bench: after the shred, subject ${who[1]} is ${JSON.stringify(after)}`);
        if (result.replayed !== SUBJECT_ACTIONS) throw new Error(`bench: the catch-up replayed ${result.replayed} actions, expected ${SUBJECT_ACTIONS}`);
        replayed = result.replayed;
        started = now();
        await projection.rebuild();
        const rebuild = now() - started;
        await checkState(log, name, big.lastPlain);
        shredMs.push(shred);
        catchUpMs.push(catchUp);
        rebuildMs.push(rebuild);
        ratios.push((shred + catchUp) / rebuild);
        catchUpRatios.push(catchUp / rebuild);
      }
      const ratio = median(ratios);
      emit({
        bench: 'projection-shred',
        events: big.events,
        subject_actions: SUBJECT_ACTIONS,
        replayed,
        rounds,
        shred_ms: round(median(shredMs), 2),
        catchup_ms: round(median(catchUpMs), 2),
        rebuild_ms: round(median(rebuildMs)),
        ratio: round(ratio, 5),
        catchup_only_ratio: round(median(catchUpRatios), 5),
        worst_ratio: round(Math.max(...ratios), 5),
        shred_rounds_ms: shredMs.map((x) => round(x, 2)),
        catchup_rounds_ms: catchUpMs.map((x) => round(x, 2)),
        rebuild_rounds_ms: rebuildMs.map((x) => round(x)),
        load1: round(loadavg()[0] as number, 2),
        target: '(shred + catchUp) <=0.01x a full rebuild()',
        met: ratio <= 0.01,
      });
    } finally {
      await log.close();
    }
  },
};

export const projectionBenches: readonly Bench[] = [projectionCatchUp, projectionEncrypted, projectionRss, projectionShred];

const childAt = process.argv.indexOf('--rss-child');
if (childAt !== -1 && process.argv[1] !== undefined && resolve(process.argv[1]) === SELF) {
  const mode = process.argv[childAt + 1] as 'catchup' | 'raw';
  rssChild(mode, process.argv[childAt + 2] as string).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
} else {
  runIfMain(import.meta.url, projectionBenches);
}
