/**
 * What every benchmark shares: the scale, temp stores, the workload, the raw-LMDB baseline's
 * pre-encoded writes, timing and the JSON line each result is printed as.
 *
 * The raw baseline writes exactly what coherence writes: the same record bytes (encoded and
 * hash-chained with coherence's own encoder, before the clock starts), the same index entries
 * (events by seq, by-aggregate [kind, id, seq] -> '', latest [kind, id] -> seq, and
 * trigger-links [trigger, aggregate] -> seq when the pair is not linked yet, which takes the same
 * lookup as coherence's) and the same transaction sizes, through lmdb directly, with no
 * validation and no checks. The store is opened by `openStore`, so the open options are coherence's by construction.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Key } from 'lmdb';
import { openLog, type Identity, type Log, type NewAction } from '../src/index.ts';
import { prepareEvents } from '../src/model/validate.ts';
import { encodeBody, GENESIS_HASH, sealRecord, toBody } from '../src/log/record.ts';
import { EMPTY, encodeLatest, linkKeyOf, openStore, type Store } from '../src/storage/lmdb/layout.ts';

// ---------------------------------------------------------------------------------------------
// Results

/** One result line. `bench` names it; the rest are figures. */
export type Result = { bench: string } & Record<string, unknown>;

/** Every result emitted in this run, in order: what `printSummary` renders. */
const emitted: Result[] = [];

/** Prints a result as one JSON line on stdout, and keeps it for the summary. */
export function emit(result: Result): void {
  emitted.push(result);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** One row of the summary: a result that has a target (or was skipped). */
interface SummaryRow {
  bench: string;
  /** The result's key figure, `name value`: its first `*_per_s`, else its first `*_ms` or `*_mb`. */
  figure: string;
  /** `ratio`, else the result's first `*_ratio` field, named. */
  ratio: string;
  target: string;
  met: boolean | 'skipped';
}

function figureText(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value !== null && typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k} ${String(v)}`).join(', ');
  return String(value);
}

/** The first field of `result` whose name ends with one of `suffixes` (tried in turn), as `name value`. */
function firstField(result: Result, suffixes: readonly string[]): string {
  for (const suffix of suffixes) {
    const found = Object.entries(result).find(([key]) => key.endsWith(suffix));
    if (found !== undefined) return `${found[0]} ${figureText(found[1])}`;
  }
  return '-';
}

/** The rows of the summary, one per result emitted with `target` and `met` or `skipped`. */
function summaryRows(): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const result of emitted) {
    if (typeof result.skipped === 'string') {
      rows.push({ bench: result.bench, figure: '-', ratio: '-', target: result.skipped, met: 'skipped' });
    } else if (typeof result.target === 'string' && typeof result.met === 'boolean') {
      const ratio = typeof result.ratio === 'number' ? String(result.ratio) : firstField(result, ['_ratio']);
      rows.push({ bench: result.bench, figure: firstField(result, ['_per_s', '_ms', '_mb']), ratio, target: result.target, met: result.met });
    }
  }
  return rows;
}

/**
 * The state of the run at a glance: a table on stderr, one row per result with a target, and
 * one last JSON line on stdout, `{"bench":"summary","targets":n,"targets_met":k,"not_met":[...],"rows":[...]}`.
 */
export function printSummary(): void {
  const rows = summaryRows();
  if (rows.length === 0) return;
  const cells = rows.map((row) => [row.bench, row.figure, row.ratio, row.target, row.met === 'skipped' ? 'skipped' : row.met ? 'yes' : 'NO']);
  const header = ['bench', 'key figure', 'ratio', 'target', 'met'];
  const widths = header.map((title, c) => Math.max(title.length, ...cells.map((line) => (line[c] as string).length)));
  const line = (values: readonly string[]) => values.map((value, c) => value.padEnd(widths[c] as number)).join('  ').trimEnd();
  const judged = rows.filter((row) => row.met !== 'skipped');
  const notMet = judged.filter((row) => row.met === false).map((row) => row.bench);
  process.stderr.write(`\n${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${cells.map(line).join('\n')}\n`);
  note(`summary: ${judged.length - notMet.length} of ${judged.length} targets met${notMet.length > 0 ? `; not met: ${notMet.join(', ')}` : ''}`);
  emit({ bench: 'summary', targets: judged.length, targets_met: judged.length - notMet.length, not_met: notMet, rows });
}

/** Progress for humans, on stderr so stdout stays JSON lines. */
export function note(message: string): void {
  process.stderr.write(`# ${message}\n`);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The q-quantile (0..1) of `values`, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Rounds to `digits` significant-ish decimals for printing. */
export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function now(): number {
  return performance.now();
}

/**
 * Runs the two sides of a round one after the other, `a` first in even rounds and `b` first in
 * odd ones (so that neither always profits from the other's warm caches), and returns both results.
 */
export async function inTurn<T>(round: number, a: () => Promise<T>, b: () => Promise<T>): Promise<[T, T]> {
  if (round % 2 === 0) {
    const first = await a();
    return [first, await b()];
  }
  const first = await b();
  return [await a(), first];
}

// ---------------------------------------------------------------------------------------------
// Scale and context

/** What a benchmark gets from the runner. */
export interface BenchContext {
  /** 1 for the figures of the issue; smaller to develop (`--quick` is 0.1). */
  readonly scale: number;
  /** `n` scaled, at least `min`. */
  scaled(n: number, min?: number): number;
  /** The shared large store (1M events at scale 1), built on first use and reused. */
  bigStore(): Promise<BuiltStore>;
  /** A fresh temp directory, removed when the run ends (or earlier with `remove`). */
  tempDir(prefix?: string): string;
  remove(dir: string): void;
}

export interface Bench {
  readonly name: string;
  readonly description: string;
  run(context: BenchContext): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Temp directories

const dirs = new Set<string>();

export function makeTempDir(prefix = 'coherence-bench-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

export function removeAllDirs(): void {
  for (const dir of [...dirs]) removeDir(dir);
}

// ---------------------------------------------------------------------------------------------
// The workload

/** Fixed clock, so coherence and the pre-encoded raw records carry the same timestamp bytes. */
export const FIXED_TIME = new Date('2025-01-01T00:00:00.000Z');
export const fixedClock = (): Date => FIXED_TIME;

/** Words that filler text is made of. */
export const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november'];

/** Deterministic filler text of `length` characters. */
export function text(seed: number, length: number): string {
  let s = '';
  let x = (seed * 2654435761) >>> 0;
  while (s.length < length) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += `${WORDS[x % WORDS.length] as string} `;
  }
  return s.slice(0, length);
}

export interface WorkloadOptions {
  /** Aggregates are `[kind, `${prefix}${i % aggregates}`]`. */
  kind?: string;
  prefix?: string;
  aggregates?: number;
  /** Offset added to `i` for the aggregate id, so different phases can use disjoint ones. */
  offset?: number;
}

/**
 * Action `i` of the standard workload: a ~200-byte JSON Patch (three operations) on one of
 * `aggregates` aggregates, one trigger, no timestamp (the log's clock fills it in).
 */
export function makeAction(i: number, options: WorkloadOptions = {}): NewAction {
  const { kind = 'book', prefix = 'b', aggregates = 1000, offset = 0 } = options;
  const aggregate: Identity = [kind, `${prefix}${(i + offset) % aggregates}`];
  return {
    source: 'bench',
    action: {
      reason: 'edit',
      actor: ['user', `u${i % 50}`],
      aggregate,
      patch: [
        { op: 'replace', path: '/title', value: text(i, 90) },
        { op: 'add', path: '/tags/-', value: WORDS[i % WORDS.length] as string },
        { op: 'replace', path: '/stock', value: i % 97 },
      ],
    },
    triggers: [['consent', `c${i % 100}`]],
  };
}

export function makeActions(count: number, options: WorkloadOptions = {}, start = 0): NewAction[] {
  const events: NewAction[] = new Array(count);
  for (let i = 0; i < count; i++) events[i] = makeAction(start + i, options);
  return events;
}

/** Bytes of the JSON Patch of an action, to show the workload is what the target says. */
export function patchBytes(event: NewAction): number {
  return Buffer.byteLength(JSON.stringify(event.action.patch));
}

// ---------------------------------------------------------------------------------------------
// The raw baseline's writes

/** One event's writes, encoded before timing: exactly the puts coherence's `write` makes. */
export interface RawWrite {
  record: Buffer;
  aggregate: Key[];
  /** The trigger-links key of the event's trigger and aggregate (coherence's, worked out before timing). */
  link: Key;
  /** That key as a string, for a raw writer that remembers the links it wrote (see {@link rawPut}). */
  linkId: string;
}

/**
 * Encodes `events` as coherence would store them from seq `firstSeq` on, hash chain included
 * (from `previousHash`, genesis for a fresh store), with coherence's own validation and encoder,
 * so the record bytes are the same. Index keys get their seq at write time.
 */
export function preEncode(events: readonly NewAction[], previousHash: Uint8Array = GENESIS_HASH): { writes: RawWrite[]; lastHash: Uint8Array } {
  const prepared = prepareEvents(events, FIXED_TIME.getTime());
  let hash = previousHash;
  const writes = prepared.map((event) => {
    if (event.type !== 'action') throw new Error('the bench workload has actions only');
    const record = encodeBody(toBody(event));
    hash = sealRecord(record, hash);
    const trigger = event.triggers[0];
    if (trigger === undefined || event.triggers.length !== 1) throw new Error('the bench workload has one trigger per action');
    const link = linkKeyOf(trigger, event.aggregate);
    return { record, aggregate: [event.aggregate[0], event.aggregate[1]], link, linkId: JSON.stringify(link) };
  });
  return { writes, lastHash: hash };
}

/**
 * The puts of one event at `seq`, inside whatever transaction the caller holds (or async). With
 * `linked` (the links this writer has put or found before), the link is looked up only when it
 * is not there: what coherence's engine does with the links it has seen committed, for context;
 * the baselines look every link up.
 */
export function rawPut(store: Store, seq: number, write: RawWrite, linked?: Set<string>): void {
  store.events.put(seq, write.record);
  store.byAggregate.put([...write.aggregate, seq], EMPTY);
  store.latest.put(write.aggregate, encodeLatest(seq));
  if (linked?.has(write.linkId) === true) return;
  rawLink(store, seq, write);
  linked?.add(write.linkId);
}

/** The trigger link of an event, unless its pair is linked already (as coherence writes it). */
export function rawLink(store: Store, seq: number, write: RawWrite): void {
  if (store.triggerLinks.getBinaryFast(write.link) === undefined) store.triggerLinks.put(write.link, encodeLatest(seq));
}

/** Opens a raw store: lmdb through `openStore`, so with coherence's exact open options. */
export function openRawStore(path: string): Store {
  return openStore(path);
}

export async function closeRawStore(store: Store): Promise<void> {
  await store.root.committed;
  await store.root.close();
}

/** Opens a coherence log with the bench clock. */
export function openBenchLog(path: string): Promise<Log> {
  return openLog({ path, clock: fixedClock });
}

/**
 * Checks that coherence stored exactly the pre-encoded records (same bytes, hash chain
 * included), so the raw baseline really writes what coherence writes. Run on a closed log.
 */
export async function assertSameRecords(path: string, writes: readonly RawWrite[]): Promise<void> {
  const store = openRawStore(path);
  try {
    let seq = 0;
    for (const { key, value } of store.events.getRange({ start: 1 })) {
      const expected = writes[seq];
      seq++;
      if (key !== seq || expected === undefined || !expected.record.equals(value)) {
        throw new Error(`bench setup: coherence's record ${key} differs from the pre-encoded one`);
      }
    }
    if (seq !== writes.length) throw new Error(`bench setup: coherence stored ${seq} records, expected ${writes.length}`);
  } finally {
    await closeRawStore(store);
  }
}

/** Splits `items` into consecutive chunks of `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** Throws unless an append went through: a bench must never time refused work. */
export function assertOk(result: { status: string }, what: string): void {
  if (result.status !== 'ok') throw new Error(`bench: ${what} returned ${result.status}`);
}

// ---------------------------------------------------------------------------------------------
// Built stores (the 1M-event one is shared by the latency, read and open benchmarks)

/**
 * A store of `events` actions. Layout, in seq order:
 *   1. probe history: `probes` aggregates ['probe', 'p<k>'], `probeHistory` actions each,
 *      round-robin; `oldBase` is the last of them;
 *   2. bulk: 1000 ['book', 'b<j>'] aggregates, round-robin, one trigger each, up to `events`.
 * Appending to a probe with `base: oldBase` therefore runs the conflict check from an old base
 * (far behind the head on the large store) on an aggregate with history, and succeeds.
 */
export interface BuiltStore {
  path: string;
  events: number;
  probes: number;
  probeHistory: number;
  oldBase: number;
  buildSeconds: number;
}

const BUILD_TRANSACTION = 50_000;

/**
 * Builds a store fast, as a fixture: exactly the records and index entries coherence writes for
 * the workload, through raw LMDB in transactions of 50k events, skipping validation. Event `i` of
 * a phase repeats the action of its aggregate (one template per aggregate, encoded once by
 * coherence's encoder); every record is hash-chained as `append` would. Appending through
 * coherence instead runs at well under half the speed, minutes for 1M events on this machine.
 * The latency benchmark runs `verify()` on a store built this way, so a builder that drifts from
 * coherence's format fails loudly.
 */
export async function buildStore(path: string, events: number, probes: number): Promise<BuiltStore> {
  const started = now();
  const probeHistory = Math.max(1, Math.round((events * 0.1) / probes));
  const oldBase = probes * probeHistory;
  if (oldBase >= events) throw new Error(`bench setup: ${events} events are too few for ${probes} probes`);
  const probeTemplates = preEncode(makeActions(probes, { kind: 'probe', prefix: 'p', aggregates: probes })).writes;
  const bulkTemplates = preEncode(makeActions(1000)).writes;
  const store = openRawStore(path);
  try {
    let previous: Uint8Array = GENESIS_HASH;
    let seq = 0;
    while (seq < events) {
      const first = seq + 1;
      const count = Math.min(BUILD_TRANSACTION, events - seq);
      const writes: RawWrite[] = new Array(count);
      for (let k = 0; k < count; k++) {
        const s = first + k;
        const template = (s <= oldBase ? probeTemplates[(s - 1) % probes] : bulkTemplates[(s - oldBase - 1) % 1000]) as RawWrite;
        const record = Buffer.allocUnsafe(template.record.length);
        template.record.copy(record);
        previous = sealRecord(record, previous);
        writes[k] = { ...template, record };
      }
      store.root.transactionSync(() => {
        for (let k = 0; k < count; k++) rawPut(store, first + k, writes[k] as RawWrite);
      });
      seq += count;
    }
  } finally {
    await closeRawStore(store);
  }
  return { path, events, probes, probeHistory, oldBase, buildSeconds: round((now() - started) / 1000, 1) };
}

/** Heap and RSS in MiB. */
export function memory(): { rss: number; heap: number } {
  const m = process.memoryUsage();
  return { rss: m.rss / 1048576, heap: m.heapUsed / 1048576 };
}
