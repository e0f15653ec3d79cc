/**
 * Append: the conflict check and the write of one batch, run inside one LMDB write transaction
 * so that no other writer, in this process or another, can come between them.
 */
import { CorruptLogError, InvalidEventError } from '../errors.ts';
import type { AppendResult, Conflict, Identity, LogEvent } from '../model/types.ts';
import { identityKey, type PreparedAppendOptions, type PreparedEvent } from '../model/validate.ts';
import { patchesAreDisjoint } from './merge.ts';
import { bodyLength, encodeBody, GENESIS_HASH, packr, recordHash, sealRecord, toBody } from './record.ts';
import { EMPTY, indexedSeqs, indexKey, lastSeq, type Store } from './store.ts';

/** An event ready to be written: its record (hash not yet sealed) and what it was made from. */
export interface EncodedEvent {
  prepared: PreparedEvent;
  record: Buffer;
}

/** Reads a stored event for a conflict report, decrypting as readers do. */
export type EventLoader = (seq: number) => LogEvent;

/**
 * Encodes a batch before the write transaction starts, so that the transaction holds the write
 * lock for as short a time as possible. `values` gives, per event, the operation values to store
 * (envelopes in place of encrypted values) when they differ from the prepared ones.
 * @throws InvalidEventError when an event is larger than `maxEventBytes`.
 */
export function encodeEvents(prepared: readonly PreparedEvent[], maxEventBytes: number, values?: readonly (readonly unknown[] | undefined)[]): EncodedEvent[] {
  return prepared.map((event, index) => {
    const record = encodeBody(toBody(event, values?.[index]));
    const size = bodyLength(record);
    if (size > maxEventBytes) {
      throw new InvalidEventError(index, '', `expected an event of at most ${maxEventBytes} bytes encoded (maxEventBytes), got ${size} bytes`);
    }
    return { prepared: event, record };
  });
}

/** What the caller sees of an event once it has a seq (plaintext values). */
function toPublicEvent(event: PreparedEvent, seq: number): LogEvent {
  const timestamp = new Date(event.timestamp);
  if (event.type === 'effect') {
    return { seq, timestamp, source: event.source, effect: { reason: event.reason, trigger: event.trigger } };
  }
  return {
    seq,
    timestamp,
    source: event.source,
    action: { reason: event.reason, actor: event.actor, aggregate: event.aggregate, patch: event.patch },
    triggers: event.triggers,
  };
}

/**
 * The seqs after `base`, not resolved, of every stored event an action on `aggregate` would
 * conflict with: its actions and the effects that affect it, ascending.
 */
export function conflictingSeqs(store: Store, aggregate: Identity, base: number, resolved: ReadonlySet<number>): number[] {
  const seqs: number[] = [];
  for (const seq of indexedSeqs(store.byAggregate, aggregate, base + 1)) if (!resolved.has(seq)) seqs.push(seq);
  let effects = false;
  for (const seq of indexedSeqs(store.effectsByAggregate, aggregate, base + 1)) {
    if (!resolved.has(seq)) { seqs.push(seq); effects = true; }
  }
  return effects ? seqs.sort((a, b) => a - b) : seqs;
}

/**
 * Runs inside the write transaction: checks the batch against what is stored and, when nothing
 * conflicts and this is no dry run, writes it. Returns the result the caller gets.
 */
export function appendInTransaction(store: Store, batch: readonly EncodedEvent[], options: PreparedAppendOptions, load: EventLoader): AppendResult {
  const head = lastSeq(store);
  if (options.base > head) return { status: 'invalid-base', head };
  const ours = batch.map((event, i) => toPublicEvent(event.prepared, head + 1 + i));
  const conflicts = options.base < head ? findConflicts(store, batch, ours, options, load) : [];
  if (conflicts.length > 0) {
    const conflicting = new Set(conflicts.map((c) => c.ours.seq));
    return { status: 'conflict', accepted: ours.filter((e) => !conflicting.has(e.seq)), conflicts };
  }
  if (!options.dryRun) write(store, batch, head);
  return { status: 'ok', events: ours };
}

function findConflicts(store: Store, batch: readonly EncodedEvent[], ours: readonly LogEvent[], options: PreparedAppendOptions, load: EventLoader): Conflict[] {
  const seqsByAggregate = new Map<string, number[]>();
  const theirsBySeq = new Map<number, LogEvent>();
  const conflicts: Conflict[] = [];
  batch.forEach(({ prepared }, i) => {
    if (prepared.type !== 'action') return;
    const key = identityKey(prepared.aggregate);
    let seqs = seqsByAggregate.get(key);
    if (seqs === undefined) {
      seqs = conflictingSeqs(store, prepared.aggregate, options.base, options.resolved);
      seqsByAggregate.set(key, seqs);
    }
    for (const seq of seqs) {
      let theirs = theirsBySeq.get(seq);
      if (theirs === undefined) {
        theirs = load(seq);
        theirsBySeq.set(seq, theirs);
      }
      if (options.merge === 'disjoint-paths' && 'action' in theirs && patchesAreDisjoint(prepared.patch, theirs.action.patch)) continue;
      conflicts.push({ ours: ours[i] as LogEvent, theirs });
    }
  });
  return conflicts;
}

/**
 * Writes a batch after the current head without any conflict check, for events that never
 * conflict (the effects of the key ring). Must run inside a write transaction.
 */
export function writeUnchecked(store: Store, batch: readonly EncodedEvent[]): LogEvent[] {
  const head = lastSeq(store);
  write(store, batch, head);
  return batch.map((event, i) => toPublicEvent(event.prepared, head + 1 + i));
}

function write(store: Store, batch: readonly EncodedEvent[], head: number): void {
  let previousHash: Uint8Array = GENESIS_HASH;
  if (head > 0) {
    const last = store.events.getBinary(head);
    if (last === undefined) throw new CorruptLogError(`event ${head}: missing although it is the head`);
    previousHash = recordHash(last);
  }
  let seq = head;
  const packed = new Map<string, Buffer>();
  for (const { prepared, record } of batch) {
    seq++;
    previousHash = sealRecord(record, previousHash);
    store.events.put(seq, record);
    if (prepared.type === 'action') {
      store.byAggregate.put(indexKey(prepared.aggregate, seq), EMPTY);
      if (prepared.triggers.length > 0) {
        const key = identityKey(prepared.aggregate);
        let aggregate = packed.get(key);
        if (aggregate === undefined) packed.set(key, (aggregate = packr.pack(prepared.aggregate)));
        for (const trigger of prepared.triggers) store.byTrigger.put(indexKey(trigger, seq), aggregate);
      }
    } else {
      const affected = affectedAggregates(store, prepared.trigger, seq);
      store.effects.put(seq, packr.pack(affected));
      for (const aggregate of affected) store.effectsByAggregate.put(indexKey(aggregate, seq), EMPTY);
    }
  }
}

/** Every aggregate with an action linked to `trigger` before `seq`, each once, in first-link order. */
export function affectedAggregates(store: Store, trigger: Identity, seq: number): Identity[] {
  const seen = new Map<string, Identity>();
  for (const { value } of store.byTrigger.getRange({ start: [trigger[0], trigger[1], 0], end: [trigger[0], trigger[1], seq] })) {
    const aggregate = packr.unpack(value) as Identity;
    const key = identityKey(aggregate);
    if (!seen.has(key)) seen.set(key, aggregate);
  }
  return [...seen.values()];
}

