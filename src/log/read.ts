/**
 * Reading: the event stream with its filters and the replay rule, an aggregate's conflicts and
 * its state. Events come from the engine a page at a time, so memory stays flat over any log.
 */
import { CorruptLogError } from '../errors.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey, type PreparedReadOptions } from '../model/validate.ts';
import type { LogCore } from './log-core.ts';
import { decodeBody, type Body } from './record.ts';
import { revealBodies, type DecryptedWith, type Reveal, type Revealed } from './reveal.ts';

/** Events per page read from the engine (and decrypted with one read of their keys). */
const PAGE = 256;
/** Seqs per page of an index read. */
const SEQ_PAGE = 4096;
/** The open end of seq ranges. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Whether an aggregate passes the `aggregates` and `kinds` filters; undefined when there are none. */
export function aggregateMatcher(options: Pick<PreparedReadOptions, 'aggregates' | 'kinds'>): ((aggregate: Identity) => boolean) | undefined {
  const { aggregates, kinds } = options;
  if (aggregates === undefined && kinds === undefined) return undefined;
  const wanted = aggregates === undefined ? undefined : new Set(aggregates.map(identityKey));
  return (aggregate) => (kinds === undefined || kinds.has(aggregate[0])) && (wanted === undefined || wanted.has(identityKey(aggregate)));
}

/** Every seq of an index range, ascending, a page at a time. */
async function* pagedSeqs(page: (from: number) => Promise<number[]>, from: number): AsyncGenerator<number> {
  for (let next = from; ; ) {
    const seqs = await page(next);
    yield* seqs;
    if (seqs.length < SEQ_PAGE) return;
    next = (seqs[seqs.length - 1] as number) + 1;
  }
}

/** Merges ascending seq streams into one ascending stream without duplicates. */
async function* mergeAscending(sources: AsyncIterator<number>[]): AsyncGenerator<number> {
  const heads = await Promise.all(sources.map((s) => s.next()));
  let last = 0;
  for (;;) {
    let min = -1;
    for (let i = 0; i < heads.length; i++) {
      const head = heads[i] as IteratorResult<number>;
      if (!head.done && (min === -1 || head.value < (heads[min] as IteratorYieldResult<number>).value)) min = i;
    }
    if (min === -1) return;
    const seq = (heads[min] as IteratorYieldResult<number>).value;
    heads[min] = await (sources[min] as AsyncIterator<number>).next();
    if (seq !== last) yield (last = seq);
  }
}

const CLOSED_WHILE_READING = 'the log was closed while reading';

/** Yields a page of events, checking before each that the reader has not seen the log close. */
function* yieldPage(core: LogCore, events: readonly LogEvent[]): Generator<LogEvent> {
  for (const event of events) {
    core.assertOpen(CLOSED_WHILE_READING);
    yield event;
  }
}

/** Loads the events of a seq stream a page at a time, yielding each page. */
export async function* loadPages(core: LogCore, seqs: AsyncIterable<number> | readonly number[], reveal: Reveal): AsyncGenerator<Revealed> {
  if (Array.isArray(seqs)) {
    // Seqs already at hand: cut into pages without awaiting each.
    for (let start = 0; start < seqs.length; start += PAGE) yield await core.events(seqs.slice(start, start + PAGE), reveal);
    return;
  }
  let page: number[] = [];
  for await (const seq of seqs as AsyncIterable<number>) {
    page.push(seq);
    if (page.length === PAGE) {
      yield await core.events(page, reveal);
      page = [];
    }
  }
  if (page.length > 0) yield await core.events(page, reveal);
}

/**
 * The seqs the replay rule adds: every action before `from` on an aggregate (matching the
 * filters) that an effect at or after `from` affects. Effects are few next to actions, and only
 * seqs are held, so this stays small next to the stream it precedes.
 */
async function replaySeqs(core: LogCore, from: number, to: number, matches: ((aggregate: Identity) => boolean) | undefined): Promise<number[]> {
  if (from <= 1) return [];
  const aggregates = new Map<string, Identity>();
  for (const { seq, affected } of await core.storage.effectsFrom(from)) {
    if (seq > to) break;
    for (const aggregate of affected) if (matches === undefined || matches(aggregate)) aggregates.set(identityKey(aggregate), aggregate);
  }
  const seqs: number[] = [];
  for (const aggregate of aggregates.values()) {
    for await (const seq of pagedSeqs((start) => core.storage.actionSeqs(aggregate, start, from, SEQ_PAGE), 1)) seqs.push(seq);
  }
  return seqs.sort((a, b) => a - b);
}

/**
 * The events `read` yields, in ascending seq, up to `to` (default: the head when it starts, so a
 * read sees the log as it was then, however fast others append): first the replayed actions
 * (all before `from`), then the stream from `from`, filtered. Closing the log ends it between
 * events. They are shown `plain` (see Reveal); raw with `options.raw`.
 */
export async function* readEvents(core: LogCore, options: PreparedReadOptions, until?: number): AsyncGenerator<LogEvent> {
  for await (const page of readPages(core, options, until)) yield* yieldPage(core, page.events);
}

/** The events of {@link readEvents}, each with what it was decrypted with, for readers that derive from each one. */
export async function* readDecrypted(core: LogCore, options: PreparedReadOptions, until?: number): AsyncGenerator<{ event: LogEvent; decrypted: DecryptedWith }> {
  for await (const { events, decrypted } of readPages(core, options, until)) {
    for (let i = 0; i < events.length; i++) {
      core.assertOpen(CLOSED_WHILE_READING);
      yield { event: events[i] as LogEvent, decrypted: decrypted[i] as DecryptedWith };
    }
  }
}

/**
 * The events of {@link readEvents}, a page at a time (one engine read each, none empty), each
 * with what it was decrypted with, for readers that take events by the hundred (a projection's
 * catch-up) or derive from them: nothing is awaited per event. Closing the log ends it between
 * pages.
 */
export async function* readPages(core: LogCore, options: PreparedReadOptions, until?: number): AsyncGenerator<Revealed> {
  core.assertOpen();
  const reveal: Reveal = options.raw ? 'raw' : 'plain';
  const to = until ?? (await core.storage.head());
  const matches = aggregateMatcher(options);
  if (options.replay) yield* loadPages(core, await replaySeqs(core, options.from, to, matches), reveal);
  if (options.aggregates !== undefined) {
    const sources: AsyncIterator<number>[] = [];
    for (const aggregate of options.aggregates) {
      if (options.kinds !== undefined && !options.kinds.has(aggregate[0])) continue;
      sources.push(pagedSeqs((start) => core.storage.actionSeqs(aggregate, start, to + 1, SEQ_PAGE), options.from));
      sources.push(pagedSeqs((start) => core.storage.effectSeqs(aggregate, start, to + 1, SEQ_PAGE), options.from));
    }
    yield* loadPages(core, mergeAscending(sources), reveal);
    return;
  }
  for (let from = options.from; from <= to; ) {
    core.assertOpen(CLOSED_WHILE_READING);
    const page = await core.storage.scan(from, to, PAGE);
    if (page.length === 0) return;
    const bodies = page.map(({ seq, record }) => ({ seq, body: decodeBody(record, seq) }));
    // Filter on the bodies, before decrypting anything the reader will not see.
    const visible = matches === undefined ? bodies : await filterBodies(core, bodies, matches);
    if (visible.length > 0) yield await revealBodies(core, visible, reveal);
    from = (page[page.length - 1] as { seq: number }).seq + 1;
  }
}

async function filterBodies(core: LogCore, bodies: { seq: number; body: Body }[], matches: (aggregate: Identity) => boolean): Promise<{ seq: number; body: Body }[]> {
  const effects = bodies.filter(({ body }) => body[0] === 1).map(({ seq }) => seq);
  const affected = new Map<number, readonly Identity[] | undefined>();
  if (effects.length > 0) (await core.storage.affected(effects)).forEach((list, i) => affected.set(effects[i] as number, list));
  return bodies.filter(({ seq, body }) => {
    if (body[0] === 0) return matches(body[5]);
    const list = affected.get(seq);
    if (list === undefined) throw new CorruptLogError(`event ${seq}: effect without its affected-aggregates entry`);
    return list.some(matches);
  });
}

/** Every seq of an action on `aggregate` in [from, to), ascending. */
export async function actionSeqs(core: LogCore, aggregate: Identity, from: number, to: number): Promise<number[]> {
  const seqs: number[] = [];
  for await (const seq of pagedSeqs((start) => core.storage.actionSeqs(aggregate, start, to, SEQ_PAGE), from)) seqs.push(seq);
  return seqs;
}

/** What an append on `aggregate` based on `base` would conflict with, ascending. */
export async function conflictsOf(core: LogCore, base: number, aggregate: Identity): Promise<LogEvent[]> {
  core.assertOpen();
  const actions = await actionSeqs(core, aggregate, base + 1, MAX_SEQ);
  const effects: number[] = [];
  for await (const seq of pagedSeqs((start) => core.storage.effectSeqs(aggregate, start, MAX_SEQ, SEQ_PAGE), base + 1)) effects.push(seq);
  const seqs = effects.length === 0 ? actions : [...actions, ...effects].sort((a, b) => a - b);
  const events: LogEvent[] = [];
  for await (const page of loadPages(core, seqs, 'plain')) events.push(...page.events);
  return events;
}
