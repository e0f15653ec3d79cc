/**
 * verify(): the hash chain, and that every index holds exactly the entries the events imply.
 */
import type { Identity, VerifyResult } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import { affectedAggregates } from './append.ts';
import { decodeBody, expectedHash, GENESIS_HASH, packr, recordHash } from './record.ts';
import { indexKey, lastSeq, type Store } from './store.ts';

class Bad {
  constructor(readonly seq: number, readonly reason: string) {}
}

function sameIdentity(a: unknown, b: Identity): boolean {
  return Array.isArray(a) && a.length === 2 && a[0] === b[0] && a[1] === b[1];
}

/** How many events verify checks between yields to the event loop (and progress reports). */
const CHUNK = 10_000;

/**
 * Walks the log from seq 1, from one snapshot. Stops at the first problem, so the seq it names
 * is the first bad one. Yields to the event loop every few thousand events.
 */
export async function verifyStore(store: Store, onProgress?: (seq: number, head: number) => void): Promise<VerifyResult> {
  const head = lastSeq(store);
  const counts = { byAggregate: 0, byTrigger: 0, effects: 0, effectsByAggregate: 0 };
  let expected = 1;
  let previousHash: Uint8Array = GENESIS_HASH;
  try {
    for (const { key: seq, value: record } of store.events.getRange({ start: 0, end: head + 1, snapshot: true })) {
      if (seq !== expected) throw new Bad(expected, `expected event ${expected}, found ${seq} next: the sequence has a gap`);
      expected++;
      if (!Buffer.from(recordHash(record)).equals(expectedHash(record, previousHash))) {
        throw new Bad(seq, 'the hash does not match the previous hash and the stored bytes');
      }
      previousHash = recordHash(record);
      let body;
      try {
        body = decodeBody(record, seq);
      } catch (e) {
        throw new Bad(seq, (e as Error).message);
      }
      if (body[0] === 0) {
        const [, , , , , aggregate, , triggers] = body;
        if (!store.byAggregate.doesExist(indexKey(aggregate, seq))) throw new Bad(seq, 'missing from the aggregate index');
        counts.byAggregate++;
        for (const trigger of triggers) {
          const entry = store.byTrigger.get(indexKey(trigger, seq));
          if (entry === undefined || !sameIdentity(packr.unpack(entry), aggregate)) throw new Bad(seq, 'missing or wrong in the trigger index');
          counts.byTrigger++;
        }
      } else {
        const stored = store.effects.get(seq);
        const affected = affectedAggregates(store, body[4], seq);
        const recorded = stored === undefined ? undefined : (packr.unpack(stored) as Identity[]);
        if (recorded === undefined || recorded.length !== affected.length || !affected.every((a, i) => identityKey(a) === identityKey(recorded[i] as Identity))) {
          throw new Bad(seq, 'the affected aggregates recorded for the effect disagree with the trigger index');
        }
        counts.effects++;
        for (const aggregate of affected) {
          if (!store.effectsByAggregate.doesExist(indexKey(aggregate, seq))) throw new Bad(seq, 'missing from the effect index');
          counts.effectsByAggregate++;
        }
      }
      if (seq % CHUNK === 0) {
        onProgress?.(seq, head);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    onProgress?.(expected - 1, head);
    const events = expected - 1;
    store.root.resetReadTxn();
    // Every expected entry exists; equal counts then mean there is nothing else in the index.
    const extra =
      findExtra(store, store.byAggregate.getKeysCount(), counts.byAggregate, store.byAggregate.getKeys(), events, 'aggregate index') ??
      findExtra(store, store.byTrigger.getKeysCount(), counts.byTrigger, store.byTrigger.getKeys(), events, 'trigger index') ??
      findExtra(store, store.effectsByAggregate.getKeysCount(), counts.effectsByAggregate, store.effectsByAggregate.getKeys(), events, 'effect index') ??
      findExtra(store, store.effects.getKeysCount(), counts.effects, store.effects.getKeys(), events, 'effects table');
    if (extra !== undefined) throw extra;
    return { ok: true, events };
  } catch (e) {
    if (e instanceof Bad) return { ok: false, seq: e.seq, reason: e.reason };
    throw e;
  }
}

/**
 * Finds the entry of an index that no event up to the verified head accounts for, naming the
 * lowest seq it claims. Entries past that head with an event belong to appends made while
 * verify ran; those without one are as wrong as any.
 */
function findExtra(store: Store, actual: number, expected: number, keys: Iterable<unknown>, events: number, name: string): Bad | undefined {
  if (actual === expected) return undefined;
  let lowest: Bad | undefined;
  for (const key of keys) {
    const seq = typeof key === 'number' ? key : ((key as unknown[])[2] as number);
    if (typeof seq === 'number' && seq > events && store.events.doesExist(seq)) continue;
    const body = seq >= 1 && seq <= events ? safeBody(store, seq) : undefined;
    const explained = body !== undefined && (typeof key === 'number' ? body[0] === 1 : claims(store, body, key as unknown[], name));
    if (!explained && (lowest === undefined || seq < lowest.seq)) lowest = new Bad(seq, `the ${name} has an entry no event accounts for`);
  }
  return lowest;
}

function safeBody(store: Store, seq: number) {
  const record = store.events.getBinary(seq);
  try {
    return record === undefined ? undefined : decodeBody(record, seq);
  } catch {
    return undefined;
  }
}

function claims(store: Store, body: ReturnType<typeof decodeBody>, key: unknown[], name: string): boolean {
  const identity: Identity = [key[0] as string, key[1] as string | number];
  if (name === 'aggregate index') return body[0] === 0 && sameIdentity(body[5], identity);
  if (name === 'trigger index') return body[0] === 0 && body[7].some((t) => sameIdentity(t, identity));
  return body[0] === 1 && affectedAggregates(store, body[4], key[2] as number).some((a) => sameIdentity(a, identity));
}
