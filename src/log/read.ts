/**
 * Reading: the event stream with its filters and the replay rule, and the aggregate fold.
 */
import { CorruptLogError } from '../errors.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey, type PreparedReadOptions } from '../model/validate.ts';
import { decodeBody, packr, type Body } from './record.ts';
import { indexedSeqs, MAX_SEQ, type Store } from './store.ts';

/** Turns the decoded body of `seq` into what the reader may see (decrypting or redacting). */
export type BodyDecoder = (seq: number, body: Body) => LogEvent;

/** The aggregates an effect affects, as recorded when it was written. */
export function affectedBy(store: Store, seq: number): Identity[] {
  const stored = store.effects.get(seq);
  if (stored === undefined) throw new CorruptLogError(`event ${seq}: effect without its affected-aggregates entry`);
  return packr.unpack(stored) as Identity[];
}

/** Whether an aggregate passes the `aggregates` and `kinds` filters; undefined when there are none. */
export function aggregateMatcher(options: Pick<PreparedReadOptions, 'aggregates' | 'kinds'>): ((aggregate: Identity) => boolean) | undefined {
  const { aggregates, kinds } = options;
  if (aggregates === undefined && kinds === undefined) return undefined;
  const wanted = aggregates === undefined ? undefined : new Set(aggregates.map(identityKey));
  return (aggregate) => (kinds === undefined || kinds.has(aggregate[0])) && (wanted === undefined || wanted.has(identityKey(aggregate)));
}

/**
 * The seqs the replay rule adds: every action before `from` on an aggregate (matching the
 * filters) that an effect at or after `from` affects. Effects are few next to actions, and only
 * seqs are held, so this stays small next to the stream it precedes.
 */
function replaySeqs(store: Store, from: number, matches: ((aggregate: Identity) => boolean) | undefined): number[] {
  if (from <= 1) return [];
  const aggregates = new Map<string, Identity>();
  for (const { value } of store.effects.getRange({ start: from })) {
    for (const aggregate of packr.unpack(value) as Identity[]) {
      if (matches === undefined || matches(aggregate)) aggregates.set(identityKey(aggregate), aggregate);
    }
  }
  const seqs: number[] = [];
  for (const aggregate of aggregates.values()) for (const seq of indexedSeqs(store.byAggregate, aggregate, 1, from)) seqs.push(seq);
  return seqs.sort((a, b) => a - b);
}

/** Merges ascending seq iterators into one ascending stream without duplicates. */
function* mergeAscending(sources: Iterator<number>[]): Generator<number> {
  const heads = sources.map((s) => s.next());
  let last = 0;
  for (;;) {
    let min = -1;
    for (let i = 0; i < heads.length; i++) {
      const head = heads[i] as IteratorResult<number>;
      if (!head.done && (min === -1 || head.value < (heads[min] as IteratorYieldResult<number>).value)) min = i;
    }
    if (min === -1) return;
    const seq = (heads[min] as IteratorYieldResult<number>).value;
    heads[min] = (sources[min] as Iterator<number>).next();
    if (seq !== last) yield (last = seq);
  }
}

/**
 * The events `read` yields, in ascending seq: first the replayed actions (all before `from`),
 * then the stream from `from`, filtered. Records are decoded one at a time from LMDB cursors.
 */
/** The event an index points at. @throws CorruptLogError when it is missing. */
export function loadEvent(store: Store, seq: number, decode: BodyDecoder): LogEvent {
  const record = store.events.getBinary(seq);
  if (record === undefined) throw new CorruptLogError(`event ${seq}: indexed but missing`);
  return decode(seq, decodeBody(record, seq));
}

export function* readEvents(store: Store, options: PreparedReadOptions, decode: BodyDecoder): Generator<LogEvent> {
  const matches = aggregateMatcher(options);
  const load = (seq: number): LogEvent => loadEvent(store, seq, decode);
  if (options.replay) for (const seq of replaySeqs(store, options.from, matches)) yield load(seq);
  if (options.aggregates !== undefined) {
    const sources: Iterator<number>[] = [];
    for (const aggregate of options.aggregates) {
      if (options.kinds !== undefined && !options.kinds.has(aggregate[0])) continue;
      sources.push(indexedSeqs(store.byAggregate, aggregate, options.from, MAX_SEQ));
      sources.push(indexedSeqs(store.effectsByAggregate, aggregate, options.from, MAX_SEQ));
    }
    for (const seq of mergeAscending(sources)) yield load(seq);
    return;
  }
  for (const { key, value } of store.events.getRange({ start: options.from })) {
    const body = decodeBody(value, key);
    // Filter on the body, before decrypting anything the reader will not see.
    if (matches !== undefined && (body[0] === 0 ? !matches(body[5]) : !affectedBy(store, key).some(matches))) continue;
    yield decode(key, body);
  }
}
