/**
 * Append: the conflict rules and the hash chain, decided inside the engine's write transaction
 * so that no other writer, in this process or another, can come between the check and the write.
 *
 * Everything that can fail runs before the engine writes anything: validation and encoding
 * before the transaction, the checks in `decide`, which returns the rows only when all passed.
 */
import { InvalidEventError } from '../errors.ts';
import { batchKeys, sealBatch } from '../crypto/seal-batch.ts';
import { expiryAfter } from '../model/duration.ts';
import type { ActionEvent, AppendResult, Conflict, Identity, LogEvent } from '../model/types.ts';
import { identityKey, prepareAppendOptions, prepareEvents, type PreparedAppendOptions, type PreparedEffect, type PreparedEvent } from '../model/validate.ts';
import type { EventRow, KeyRow, WriteDecision, WriteRequest, WriteView } from '../storage/engine.ts';
import { prepareBatchKeys, type BatchKeys } from './batch-keys.ts';
import type { LogCore } from './log-core.ts';
import { patchesAreDisjoint } from './merge.ts';
import { bodyLength, decodeBody, encodeBody, extrasOf, GENESIS_HASH, recordHash, sealRecord, toBody, toLogEvent, type ActionBody, type Extras } from './record.ts';
import { upcast } from './upcast.ts';
import { versionOf, type Schemas } from '../model/schemas.ts';

/** An event ready to be written: its record (hash not yet sealed) and what it was made from. */
export interface EncodedEvent {
  prepared: PreparedEvent;
  record: Buffer;
  /** The conflicts an action was let through with, as recorded in its extras. */
  settled?: Settled;
}

/** What an action resolved and what the merge let through, when anything. */
interface Settled {
  resolved: number[] | undefined;
  merged: number[] | undefined;
}

/**
 * Encodes a batch before the write transaction starts, so that the transaction holds the write
 * lock for as short a time as possible. `values` gives, per event, the operation values to store
 * (envelopes in place of encrypted values) when they differ from the prepared ones.
 * @throws InvalidEventError when an event is larger than `maxEventBytes`.
 */
export function encodeEvents(prepared: readonly PreparedEvent[], maxEventBytes: number, values?: readonly (readonly unknown[] | undefined)[], extras?: readonly (Extras | undefined)[]): EncodedEvent[] {
  const encoded: EncodedEvent[] = new Array(prepared.length);
  for (let index = 0; index < prepared.length; index++) {
    const event = prepared[index] as PreparedEvent;
    const record = encodeBody(toBody(event, values?.[index], extras?.[index]));
    const size = bodyLength(record);
    if (size > maxEventBytes) {
      throw new InvalidEventError(index, '', `expected an event of at most ${maxEventBytes} bytes encoded (maxEventBytes), got ${size} bytes`);
    }
    encoded[index] = { prepared: event, record };
  }
  return encoded;
}

/** What the caller sees of an event once it has a seq (plaintext values). */
function toPublicEvent(event: PreparedEvent, seq: number, settled?: Settled): LogEvent {
  const timestamp = new Date(event.timestamp);
  if (event.type === 'effect') {
    return { seq, timestamp, source: event.source, effect: { reason: event.reason, trigger: event.trigger } };
  }
  const action: ActionEvent = {
    seq,
    timestamp,
    source: event.source,
    action: { reason: event.reason, actor: event.actor, aggregate: event.aggregate, patch: event.patch },
    triggers: event.triggers,
  };
  if (settled?.resolved !== undefined) action.resolved = settled.resolved;
  if (settled?.merged !== undefined) action.merged = settled.merged;
  return action;
}

function distinct(identities: Iterable<Identity>): Identity[] {
  const found = new Map<string, Identity>();
  for (const identity of identities) found.set(identityKey(identity), identity);
  return [...found.values()];
}

const NONE: readonly Identity[] = [];
const NO_KEY_ROWS: readonly KeyRow[] = [];

function hasEffect(batch: readonly EncodedEvent[]): boolean {
  for (const { prepared } of batch) if (prepared.type === 'effect') return true;
  return false;
}

const KEYS_CREATED = Object.freeze({ keysCreated: true });
const NO_KEYS_CREATED = Object.freeze({ keysCreated: false });

/**
 * What a write of `batch` must read: the aggregates it may conflict on, its effects' triggers.
 * A batch's aggregates are gathered when an engine first asks (LMDB reads them in the
 * transaction, so it never does).
 */
export function writeRequest(batch: readonly EncodedEvent[], base: number, conflictRecords = false, keys: readonly Identity[] = NONE): WriteRequest {
  const only = batch.length === 1 ? (batch[0] as EncodedEvent).prepared : undefined;
  if (only !== undefined) {
    // One event, the most common append: nothing to gather.
    return { base, aggregates: only.type === 'action' ? [only.aggregate] : NONE, conflictRecords, triggers: only.type === 'effect' ? [only.trigger] : NONE, keys };
  }
  let aggregates: readonly Identity[] | undefined;
  const triggers = hasEffect(batch) ? distinct(batch.flatMap(({ prepared }) => (prepared.type === 'effect' ? [prepared.trigger] : []))) : NONE;
  return {
    base,
    get aggregates() {
      return (aggregates ??= distinct(batch.flatMap(({ prepared }) => (prepared.type === 'action' ? [prepared.aggregate] : []))));
    },
    conflictRecords,
    triggers,
    keys,
  };
}

/**
 * The rows of a batch written after `view.head`: each record sealed into the chain, each action
 * indexed, each effect with the aggregates it affects (those linked to its trigger in the store,
 * then those linked earlier in the same batch).
 */
export function eventRows(view: WriteView, batch: readonly EncodedEvent[]): { rows: EventRow[]; events: LogEvent[] } {
  let previousHash: Uint8Array = view.last === undefined ? GENESIS_HASH : recordHash(view.last);
  // Links made earlier in the batch, which its effects affect too (needed only when it has some).
  const links = hasEffect(batch) ? new Map<string, Identity[]>() : undefined;
  const rows: EventRow[] = new Array(batch.length);
  const events: LogEvent[] = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const { prepared, record, settled } = batch[i] as EncodedEvent;
    const seq = view.head + 1 + i;
    previousHash = sealRecord(record, previousHash);
    events[i] = toPublicEvent(prepared, seq, settled);
    if (prepared.type === 'action') {
      rows[i] = { type: 'action', seq, record, aggregate: prepared.aggregate, triggers: prepared.triggers };
      if (links !== undefined) {
        for (const trigger of prepared.triggers) {
          const key = identityKey(trigger);
          const linked = links.get(key);
          if (linked === undefined) links.set(key, [prepared.aggregate]);
          else linked.push(prepared.aggregate);
        }
      }
    } else {
      const affected = distinct([...view.linked(prepared.trigger), ...(links?.get(identityKey(prepared.trigger)) ?? [])]);
      rows[i] = { type: 'effect', seq, record, trigger: prepared.trigger, affected };
    }
  }
  return { rows, events };
}

/**
 * The extras each event records: the schema version of an action's kind (when not 1), and on
 * the first event the idempotency key with the batch's length. Undefined when there are none.
 */
function batchExtras(prepared: readonly PreparedEvent[], schemas: Schemas, idempotencyKey: string | undefined): (Extras | undefined)[] | undefined {
  if (schemas.size === 0 && idempotencyKey === undefined) return undefined;
  let any = false;
  const extras = prepared.map((event, i) => {
    const found: Extras = {};
    const version = event.type === 'action' ? versionOf(schemas, event.aggregate[0]) : 1;
    if (version !== 1) found.v = version;
    if (i === 0 && idempotencyKey !== undefined) found.i = [idempotencyKey, prepared.length];
    if (found.v === undefined && found.i === undefined) return undefined;
    any = true;
    return found;
  });
  return any ? extras : undefined;
}

/** What an append decided in its transaction; conflicts and duplicates are loaded afterwards. */
export type Decided =
  | { status: 'ok'; events: LogEvent[] }
  | { status: 'invalid-base'; head: number }
  | { status: 'duplicate'; first: number; last: number }
  | { status: 'conflict'; ours: LogEvent[]; conflicts: readonly { ours: number; theirs: number }[] };

/** The seqs after `base` of stored events an action on `aggregate` runs into, ascending. */
function touchingSeqs(view: WriteView, aggregate: Identity): readonly number[] {
  const { actions, effects } = view.conflicting(aggregate);
  return effects.length === 0 ? actions : [...actions, ...effects].sort((a, b) => a - b);
}

/** What the check found for a batch: its conflicts, and per action what it resolved or merged. */
interface Checked {
  conflicts: readonly { ours: number; theirs: number }[];
  /** By index in the batch: the seqs the action ran into that the caller named as resolved. */
  resolved: ReadonlyMap<number, number[]>;
  /** By index in the batch: the seqs the disjoint-paths rule let it through. */
  merged: ReadonlyMap<number, number[]>;
}

/** What the check of a batch that ran into nothing found (shared: it is never changed). */
const NOTHING_FOUND: Checked = Object.freeze({ conflicts: Object.freeze([]), resolved: new Map(), merged: new Map() });

/**
 * The check of a batch: for each action, every stored event after `base` on its aggregate is a
 * conflict (in order of ours then theirs) unless the caller resolved it or, with
 * `disjoint-paths`, an action whose patch touches no common location.
 */
function checkBatch(view: WriteView, batch: readonly EncodedEvent[], options: PreparedAppendOptions, headSeq: number, schemas: Schemas): Checked {
  if (batch.length === 1) {
    // One event, the most common append: when its aggregate has nothing after the base, no more.
    const event = (batch[0] as EncodedEvent).prepared;
    if (event.type !== 'action') return NOTHING_FOUND;
    const seqs = touchingSeqs(view, event.aggregate);
    if (seqs.length === 0) return NOTHING_FOUND;
    return checkActions(view, batch, options, headSeq, schemas, new Map([[identityKey(event.aggregate), seqs]]));
  }
  return checkActions(view, batch, options, headSeq, schemas, new Map());
}

/** The check of `batch`'s actions, with the seqs already looked up for some aggregates. */
function checkActions(view: WriteView, batch: readonly EncodedEvent[], options: PreparedAppendOptions, headSeq: number, schemas: Schemas, byAggregate: Map<string, readonly number[]>): Checked {
  const theirs = new Map<number, LogEvent | undefined>();
  const checked = { conflicts: [] as { ours: number; theirs: number }[], resolved: new Map<number, number[]>(), merged: new Map<number, number[]>() };
  const note = (into: Map<number, number[]>, i: number, seq: number) => into.set(i, [...(into.get(i) ?? []), seq]);
  batch.forEach(({ prepared }, i) => {
    if (prepared.type !== 'action') return;
    const key = identityKey(prepared.aggregate);
    let seqs = byAggregate.get(key);
    if (seqs === undefined) byAggregate.set(key, (seqs = touchingSeqs(view, prepared.aggregate)));
    for (const seq of seqs) {
      if (options.resolved.has(seq)) {
        note(checked.resolved, i, seq);
        continue;
      }
      if (options.merge === 'disjoint-paths') {
        if (!theirs.has(seq)) {
          const record = view.record(seq);
          // Paths and ops are stored in plaintext: the merge rule reads them without decrypting.
          theirs.set(seq, record === undefined ? undefined : mergeView(record, seq, schemas));
        }
        const event = theirs.get(seq);
        if (event !== undefined && 'action' in event && patchesAreDisjoint(prepared.patch, event.action.patch)) {
          note(checked.merged, i, seq);
          continue;
        }
      }
      checked.conflicts.push({ ours: headSeq + 1 + i, theirs: seq });
    }
  });
  return checked;
}

/**
 * The batch with the resolved and merged seqs of its actions recorded in their extras (so the
 * history shows how each conflict was settled); the records of the others are kept as encoded.
 */
function withSettlements(batch: readonly EncodedEvent[], checked: Checked): readonly EncodedEvent[] {
  if (checked.resolved.size === 0 && checked.merged.size === 0) return batch;
  return batch.map((event, i) => {
    const resolved = checked.resolved.get(i);
    const merged = checked.merged.get(i);
    if (resolved === undefined && merged === undefined) return event;
    const body = decodeBody(event.record, i) as ActionBody;
    const extras: Extras = { ...extrasOf(body) };
    if (resolved !== undefined) extras.r = resolved;
    if (merged !== undefined) extras.m = merged;
    if (body.length === 8) body.push(null); // no encryption key: its place before the extras
    body[9] = extras;
    return { prepared: event.prepared, record: encodeBody(body), settled: { resolved, merged } };
  });
}

/**
 * A stored action as the merge rule compares it with ours: lifted to the current schema version
 * (ours is in it), values left as stored. An action that cannot be lifted is not compared (it
 * conflicts): the rule may report a conflict it cannot rule out, never hide one.
 */
function mergeView(record: Uint8Array, seq: number, schemas: Schemas): LogEvent | undefined {
  const body = decodeBody(record, seq);
  const event = toLogEvent(seq, body);
  if (!('action' in event)) return event;
  try {
    return upcast(event, extrasOf(body).v ?? 1, schemas);
  } catch {
    return undefined;
  }
}

/** How a batch is encrypted again under other key material (keys another writer created meanwhile). */
export type Reencode = (material: ReadonlyMap<string, { key: Uint8Array }>) => EncodedEvent[];

/** The decision of one append inside its transaction (exported for the per-stage benchmark). */
export function decideAppend(view: WriteView, encoded: readonly EncodedEvent[], options: PreparedAppendOptions, keys?: BatchKeys, schemas: Schemas = new Map(), reencode?: Reencode): WriteDecision<Decided> {
  const idempotent = view.idempotent;
  if (idempotent !== undefined) return { result: { status: 'duplicate', ...idempotent } };
  if (options.base > view.head) return { result: { status: 'invalid-base', head: view.head } };
  // A key shredded since it was read must not gain new ciphertext (that throws); a key another
  // connection created meanwhile means encrypting again under the stored one, here, so the
  // append keeps its place among the others.
  const rechecked = keys?.recheck(view);
  const batch = rechecked === undefined || reencode === undefined ? encoded : reencode(rechecked.material);
  const keyRows = rechecked?.rows ?? keys?.rows ?? NO_KEY_ROWS;
  const checked = options.base < view.head ? checkBatch(view, batch, options, view.head, schemas) : NOTHING_FOUND;
  if (checked.conflicts.length > 0) {
    // Ours as they would have been stored: with what each resolved or merged past.
    const ours = batch.map(({ prepared }, i) => toPublicEvent(prepared, view.head + 1 + i, { resolved: checked.resolved.get(i), merged: checked.merged.get(i) }));
    return { result: { status: 'conflict', ours, conflicts: checked.conflicts } };
  }
  const settled = withSettlements(batch, checked);
  if (options.dryRun) return { result: { status: 'ok', events: settled.map((event, i) => toPublicEvent(event.prepared, view.head + 1 + i, event.settled)) } };
  const { rows, events } = eventRows(view, settled);
  const decision: WriteDecision<Decided> = { result: { status: 'ok', events }, events: rows };
  if (keyRows.length > 0) decision.keys = keyRows as KeyRow[];
  if (options.idempotencyKey !== undefined) decision.idempotency = { key: options.idempotencyKey, first: view.head + 1, last: view.head + batch.length };
  return decision;
}

/** Turns what was decided into the caller's result, loading the stored events it names. */
async function toResult(core: LogCore, decided: Exclude<Decided, { status: 'ok' | 'invalid-base' }>): Promise<AppendResult> {
  switch (decided.status) {
    case 'duplicate': {
      const seqs = Array.from({ length: decided.last - decided.first + 1 }, (_, i) => decided.first + i);
      return { status: 'duplicate', events: (await core.events(seqs)).events };
    }
    case 'conflict': {
      const theirSeqs = [...new Set(decided.conflicts.map((c) => c.theirs))];
      const theirs = new Map((await core.events(theirSeqs)).events.map((event) => [event.seq, event]));
      const first = decided.ours[0]?.seq ?? 0;
      const conflicts: Conflict[] = decided.conflicts.map((c) => ({ ours: decided.ours[c.ours - first] as LogEvent, theirs: theirs.get(c.theirs) as LogEvent }));
      const conflicting = new Set(decided.conflicts.map((c) => c.ours));
      return { status: 'conflict', accepted: decided.ours.filter((e) => !conflicting.has(e.seq)), conflicts };
    }
  }
}

/**
 * Appends a batch (see `Log.append`); `reservedKinds` lets coherence's own parts append on `$` kinds.
 * @throws InvalidEventError, InvalidArgumentError for bad input; LogClosedError after close.
 */
export function append(core: LogCore, events: unknown, options: unknown, reservedKinds = false): Promise<AppendResult> {
  // Not an async function: an append in flight then holds a promise and one closure, not a
  // suspended frame (a thousand concurrent appends are a thousand of these). What it throws
  // before the write is still a rejection.
  let written: Promise<Decided>;
  let appendOptions: PreparedAppendOptions;
  try {
    core.assertOpen();
    // Validated (and copied) before anything is awaited, so the caller may reuse its objects at once.
    const now = core.now();
    const prepared = prepareEvents(events, now, reservedKinds);
    appendOptions = prepareAppendOptions(options);
    const keyIds = batchKeys(prepared);
    const extras = batchExtras(prepared, core.settings.schemas, appendOptions.idempotencyKey);
    if (keyIds.length > 0 || !core.issuesAtOnce()) return appendInTurn(core, prepared, extras, appendOptions, keyIds, now);
    // Nothing to read first and nothing ahead of it: issued now, as inTurn would, without its closure.
    written = issue(core, encodeEvents(prepared, core.settings.maxEventBytes, undefined, extras), appendOptions, keyIds);
  } catch (error) {
    return Promise.reject(error);
  }
  const { dryRun } = appendOptions;
  return written.then((decided) => settle(core, decided, dryRun, false));
}

/** What the caller gets for what an append decided; a write that appended tells the log's listeners. */
function settle(core: LogCore, decided: Decided, dryRun: boolean, keysCreated: boolean): AppendResult | Promise<AppendResult> {
  if (decided.status === 'ok' && !dryRun) core.notifyWrite(keysCreated ? KEYS_CREATED : NO_KEYS_CREATED);
  return decided.status === 'ok' || decided.status === 'invalid-base' ? decided : toResult(core, decided);
}

/** An append that reads its keys first, or waits for an earlier one's: it keeps its place among this log's appends (see LogCore.inTurn). */
async function appendInTurn(core: LogCore, prepared: readonly PreparedEvent[], extras: readonly (Extras | undefined)[] | undefined, options: PreparedAppendOptions, keyIds: readonly Identity[], now: number): Promise<AppendResult> {
  const { maxEventBytes, keyTtl } = core.settings;
  const keys = keyIds.length === 0 ? undefined : prepareBatchKeys(core.storage, core.keys, keyIds, now, keyTtl === undefined ? null : expiryAfter(now, keyTtl, 'options.keyTtl'));
  const decided = await core.inTurn(keys, (batchKeys) => {
    if (batchKeys === undefined) return issue(core, encodeEvents(prepared, maxEventBytes, undefined, extras), options, keyIds);
    const reencode: Reencode = (material) => encodeEvents(prepared, maxEventBytes, sealBatch(prepared, material), extras);
    return issue(core, reencode(batchKeys.material), options, keyIds, batchKeys, reencode).then((result) => (batchKeys.committed(), result));
  });
  return settle(core, decided, options.dryRun, keys !== undefined && (await keys)?.created === true);
}

/**
 * Hands an encoded batch to the engine's write; called synchronously after the encoding, so
 * that writes are issued in the order of their turns. With keys, the batch was sealed under the
 * material read, and `reencode` seals it again inside the write if another writer created one
 * of the keys meanwhile.
 */
function issue(core: LogCore, batch: readonly EncodedEvent[], options: PreparedAppendOptions, keyIds: readonly Identity[], keys?: BatchKeys, reencode?: Reencode): Promise<Decided> {
  core.assertOpen();
  const request = writeRequest(batch, options.base, options.merge === 'disjoint-paths', keyIds);
  if (options.idempotencyKey !== undefined) request.idempotencyKey = options.idempotencyKey;
  const schemas = core.settings.schemas;
  return core.storage.write(request, (view) => decideAppend(view, batch, options, keys, schemas, reencode));
}

/**
 * Appends effects that never conflict (the key ring's), with key records to store in the same
 * transaction. `decide` sees the view first and returns the key rows (it may throw to refuse).
 */
export async function appendEffects(
  core: LogCore,
  effects: (view: WriteView) => { effects: PreparedEffect[]; keys: KeyRow[] },
  request: { keys: readonly Identity[]; triggers: readonly Identity[] },
): Promise<LogEvent[]> {
  core.assertOpen();
  const written = await core.storage.write({ base: 0, aggregates: [], conflictRecords: false, triggers: request.triggers, keys: request.keys }, (view) => {
    const decided = effects(view);
    if (decided.effects.length === 0) return { result: [], keys: decided.keys };
    const { rows, events } = eventRows(view, encodeEvents(decided.effects, core.settings.maxEventBytes));
    return { result: events, events: rows, keys: decided.keys };
  });
  if (written.length > 0) core.notifyWrite();
  return written;
}
