/**
 * verify() on LMDB: every index holds exactly the entries the events imply, both ways.
 */
import type { Key } from 'lmdb';
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';
import { identityKey, sameIdentity } from '../../model/validate.ts';
import type { IndexFacts, VerifyCheck } from '../engine.ts';
import { asKey, indexKey, linkedAt, linkKeyOf, linkTrigger, readLink, type Store } from './layout.ts';

/** How many events are checked between yields to the event loop (and progress reports). */
const CHUNK = 10_000;

type Problem = { seq: number; reason: string };
type Linked = (store: Store, trigger: Identity, seq: number) => Identity[];

/** Whether `stored` (as decoded, of unknown shape) holds exactly the identities of `expected`, in order. */
function sameList(stored: unknown, expected: readonly Identity[]): boolean {
  return Array.isArray(stored) && stored.length === expected.length && expected.every((identity, i) => sameIdentity(stored[i], identity));
}

/**
 * Walks the events up to `head` from one snapshot, checking the entries each implies, then looks
 * for entries no event accounts for (only when the counts say there are some).
 */
export async function verifyIndexes(store: Store, head: number, check: VerifyCheck, linked: Linked): Promise<Problem | undefined> {
  const counts = { byAggregate: 0, triggerLinks: 0, effects: 0, effectsByAggregate: 0, idempotency: 0 };
  /** The last seq that touched each aggregate, which `latest` must say. */
  const touched = new Map<string, { aggregate: Identity; seq: number }>();
  const touch = (aggregate: Identity, seq: number) => touched.set(identityKey(aggregate), { aggregate, seq });
  for (const { key: seq, value: record } of store.events.getRange({ start: 0, end: head + 1, snapshot: true })) {
    const facts = check.inspect(seq, record);
    if (facts.type === 'action') {
      if (!store.byAggregate.doesExist(indexKey(facts.aggregate, seq))) return { seq, reason: 'missing from the aggregate index' };
      counts.byAggregate++;
      touch(facts.aggregate, seq);
      // Linked at this seq or before; the link made here is the action's own to account for.
      for (const trigger of facts.triggers) {
        const link = linkedAt(store, trigger, facts.aggregate);
        if (link === undefined || link.seq > seq || !sameIdentity(link.aggregate, facts.aggregate)) return { seq, reason: 'missing or wrong in the trigger index' };
        if (link.seq === seq) counts.triggerLinks++;
      }
    } else {
      const stored = store.effects.get(seq);
      const affected = linked(store, facts.trigger, seq);
      if (stored === undefined || !sameList(packr.unpack(stored), affected)) {
        return { seq, reason: 'the affected aggregates recorded for the effect disagree with the trigger index' };
      }
      counts.effects++;
      for (const aggregate of affected) {
        if (!store.effectsByAggregate.doesExist(indexKey(aggregate, seq))) return { seq, reason: 'missing from the effect index' };
        counts.effectsByAggregate++;
        touch(aggregate, seq);
      }
    }
    if (facts.idempotency !== undefined) {
      const stored = store.idempotency.get(facts.idempotency.key);
      const batch = stored === undefined ? undefined : (packr.unpack(stored) as [number, number]);
      if (batch === undefined || batch[0] !== seq || batch[1] !== facts.idempotency.last) return { seq, reason: 'the idempotency key of its batch is missing or wrong in the idempotency table' };
      counts.idempotency++;
    }
    if (seq % CHUNK === 0) {
      check.onProgress?.(seq);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  store.root.resetReadTxn();
  // Every expected entry exists; equal counts then mean there is nothing else in the index.
  const stray = (db: Store['byAggregate'], expected: number, name: string, explains: (facts: IndexFacts, key: Key) => boolean) =>
    db.getKeysCount() === expected ? undefined : findStray(store, db.getKeys(), seqOf, head, name, check, explains);
  return (
    stray(store.byAggregate, counts.byAggregate, 'aggregate index', (facts, key) => facts.type === 'action' && sameIdentity(identityOf(key), facts.aggregate)) ??
    strayLink(store, counts.triggerLinks, head, check) ??
    stray(store.effectsByAggregate, counts.effectsByAggregate, 'effect index', (facts, key) =>
      facts.type === 'effect' && linked(store, facts.trigger, seqOf(key)).some((a) => sameIdentity(identityOf(key), a))) ??
    stray(store.effects, counts.effects, 'effects table', (facts) => facts.type === 'effect') ??
    strayIdempotency(store, counts.idempotency, head, check) ??
    wrongLatest(store, touched, head)
  );
}

/**
 * The `latest` index against what the walk saw: an aggregate touched since `latestFrom` has its
 * last seq there (an older one may lack an entry, never have a wrong one), and there is no entry
 * for an aggregate nothing touched. A wrong entry would hide conflicts, so it is corruption.
 */
function wrongLatest(store: Store, touched: Map<string, { aggregate: Identity; seq: number }>, head: number): Problem | undefined {
  const latest = (aggregate: Identity): number | undefined => store.latest.getBinary(asKey(aggregate))?.readDoubleBE(0);
  let lowest: Problem | undefined;
  const found = (seq: number) => {
    if (lowest === undefined || seq < lowest.seq) lowest = { seq, reason: 'the latest-seq index disagrees with the events' };
  };
  for (const { aggregate, seq } of touched.values()) {
    const entry = latest(aggregate);
    if (entry === undefined ? seq >= store.latestFrom : entry !== seq && !(entry > head && store.events.doesExist(entry))) found(seq);
  }
  for (const key of store.latest.getKeys()) {
    const aggregate = identityOf(key);
    if (!touched.has(identityKey(aggregate))) {
      const entry = latest(aggregate) ?? 0;
      if (!(entry > head && store.events.doesExist(entry))) found(entry);
    }
  }
  return lowest;
}

/**
 * A trigger link no action accounts for (looked for only when the counts say there is one): the
 * action at its seq must link its trigger to its aggregate, under the key that pair is stored at.
 */
function strayLink(store: Store, expected: number, head: number, check: VerifyCheck): Problem | undefined {
  if (store.triggerLinks.getKeysCount() === expected) return undefined;
  const links = function* () {
    for (const { key, value } of store.triggerLinks.getRange()) yield { key, ...readLink(key, value) };
  };
  return findStray(store, links(), (link) => link.seq, head, 'trigger index', check, (facts, link) => {
    const trigger = linkTrigger(link.key);
    return facts.type === 'action' && sameIdentity(link.aggregate, facts.aggregate) && facts.triggers.some((t) => sameIdentity(trigger, t)) &&
      sameKey(link.key, linkKeyOf(trigger, link.aggregate));
  });
}

function sameKey(a: Key, b: Key): boolean {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((part, i) => part === b[i]);
}

/** An idempotency entry no event names (looked for only when the counts say there is one). */
function strayIdempotency(store: Store, expected: number, head: number, check: VerifyCheck): Problem | undefined {
  if (store.idempotency.getCount() === expected) return undefined;
  let lowest: Problem | undefined;
  for (const { key, value } of store.idempotency.getRange()) {
    const [first, last] = packr.unpack(value) as [number, number];
    // Batches appended while verify ran are the next run's.
    if (first > head && store.events.doesExist(first)) continue;
    const record = first >= 1 && first <= head ? store.events.getBinary(first) : undefined;
    const named = record === undefined ? undefined : check.factsOf(first, record)?.idempotency;
    if (named?.key === key && named.last === last) continue;
    if (lowest === undefined || first < lowest.seq) lowest = { seq: first, reason: 'the idempotency table has an entry no event accounts for' };
  }
  return lowest;
}

function identityOf(key: Key): Identity {
  const [kind, id] = key as [string, Identity[1]];
  return [kind, id];
}

function seqOf(key: Key): number {
  return typeof key === 'number' ? key : ((key as unknown[])[2] as number);
}

/**
 * The entry of an index that no event up to the verified head accounts for, naming the lowest
 * seq it claims. Entries past that head with an event belong to appends made while verify ran;
 * those without one are as wrong as any.
 */
function findStray<Entry>(
  store: Store,
  entries: Iterable<Entry>,
  seqOfEntry: (entry: Entry) => number,
  head: number,
  name: string,
  check: VerifyCheck,
  explains: (facts: IndexFacts, entry: Entry) => boolean,
): Problem | undefined {
  let lowest: Problem | undefined;
  for (const entry of entries) {
    const seq = seqOfEntry(entry);
    if (typeof seq === 'number' && seq > head && store.events.doesExist(seq)) continue;
    const record = typeof seq === 'number' && seq >= 1 && seq <= head ? store.events.getBinary(seq) : undefined;
    const facts = record === undefined ? undefined : check.factsOf(seq, record);
    if ((facts === undefined || !explains(facts, entry)) && (lowest === undefined || seq < lowest.seq)) {
      lowest = { seq, reason: `the ${name} has an entry no event accounts for` };
    }
  }
  return lowest;
}
