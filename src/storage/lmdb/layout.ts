/**
 * The LMDB layout of a store: one environment in the store directory, with these databases.
 *
 *   meta                  string key -> bytes      format version and store-wide values
 *   events                seq -> record            the log itself (see log/record.ts)
 *   by-aggregate          [kind, id, seq] -> ''    every action, by the aggregate it changes
 *   trigger-links         [trigger kind, id, aggregate kind, id] -> seq (8-byte float)
 *                                                  each aggregate an action linked to a trigger,
 *                                                  once, with the first such action's seq; for
 *                                                  identities too long to share a key,
 *                                                  [trigger kind, id, hash of the aggregate] ->
 *                                                  seq, then the aggregate (msgpack)
 *   effects               seq -> affected aggregates (msgpack)
 *   effects-by-aggregate  [kind, id, seq] -> ''    every effect, by each aggregate it affects
 *   keys                  [kind, id] -> key record (see crypto/key-record.ts)
 *   key-expiry            [expiresAt, kind, id] -> ''  live keys by expiry, for expire()
 *   projections           [name, 0] -> consumer record; [name, 1, kind, id] -> state
 *   idempotency           key -> msgpack [first, last], the seqs a keyed batch wrote
 *   snapshots             [kind, id] -> msgpack [seq, sealed state], the latest snapshot
 *   latest                [kind, id] -> seq (8-byte float), the last action on the aggregate or
 *                                          effect affecting it, kept from meta `latest-from` on
 *
 * An effect's affected aggregates are worked out once, when it is written, from the trigger's
 * links; so the conflict check of an action is two range scans starting at
 * `[aggregate, base + 1]`, O(log n + conflicts found), whatever the length of the log; and when
 * `latest` says nothing touched the aggregate after the base, one lookup. An action linking a
 * trigger to an aggregate already linked to it writes nothing for the link (one lookup).
 *
 * Stores of older formats are upgraded when first opened. Format 1 (0.1.0) lacks
 * `idempotency`, `snapshots` and `latest`, which are created (`latest` holds what was written
 * since: `latest-from` is the first seq it covers). Formats 1 and 2 index every action under each
 * of its triggers (`by-trigger`, [kind, id, seq] -> aggregate); the upgrade turns that index into
 * `trigger-links` and empties it.
 */
import { createHash } from 'node:crypto';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import { UnsupportedFormatError } from '../../errors.ts';
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';

/**
 * Version of the on-disk format; a store with a higher one is refused. 2 (coherence 0.2): records
 * may carry extras (schema versions, idempotency keys), projection states may be sealed, and the
 * `idempotency` and `snapshots` databases exist. 3: triggers are linked to aggregates once
 * (`trigger-links`), not once per action. An older store is upgraded when opened: its records
 * and states read as they are, and the older version then refuses the store rather than misread it.
 */
export const FORMAT_VERSION = 3;

/** The largest seq we can key (safe integers); used as the open end of index ranges. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export const EMPTY = Buffer.alloc(0);

/** Under a consumer's name: its record, then its states. */
export const CONSUMER_META = 0;
export const CONSUMER_STATE = 1;

export interface Store {
  readonly root: RootDatabase<Buffer, Key>;
  readonly meta: Database<Buffer, string>;
  readonly events: Database<Buffer, number>;
  readonly byAggregate: Database<Buffer, Key>;
  readonly triggerLinks: Database<Buffer, Key>;
  readonly effects: Database<Buffer, number>;
  readonly effectsByAggregate: Database<Buffer, Key>;
  readonly keys: Database<Buffer, Key>;
  readonly keyExpiry: Database<Buffer, Key>;
  readonly projections: Database<Buffer, Key>;
  readonly idempotency: Database<Buffer, string>;
  readonly snapshots: Database<Buffer, Key>;
  readonly latest: Database<Buffer, Key>;
  /** The first seq `latest` covers: an aggregate without an entry was touched only before it. */
  readonly latestFrom: number;
}

/** Every named database of a store, by its LMDB name. */
export function databases(store: Store): [string, Database<Buffer, Key>][] {
  return [
    ['meta', store.meta], ['events', store.events], ['by-aggregate', store.byAggregate], ['trigger-links', store.triggerLinks],
    ['effects', store.effects], ['effects-by-aggregate', store.effectsByAggregate], ['keys', store.keys],
    ['key-expiry', store.keyExpiry], ['projections', store.projections], ['idempotency', store.idempotency], ['snapshots', store.snapshots], ['latest', store.latest],
  ] as [string, Database<Buffer, Key>][];
}

/** Opens (creating when missing) the store at `path` and checks its format version. */
export function openStore(path: string): Store {
  // noSubdir: false, or lmdb-js takes a directory named like `shop.v2` for a file name.
  // overlappingSync: false (lmdb-js turns it on by default on Linux): a commit is then synced
  // before its promise resolves, so an acknowledged append survives power loss, not only a
  // killed process. Concurrent appends still share one commit and one sync.
  const root = open<Buffer, Key>({ path, noSubdir: false, overlappingSync: false, maxDbs: 16, encoding: 'binary', cache: false });
  const db = <K extends Key>(name: string) => root.openDB<Buffer, K>({ name, encoding: 'binary', cache: false });
  const store: Omit<Store, 'latestFrom'> = {
    root,
    meta: db<string>('meta'),
    events: db<number>('events'),
    byAggregate: db('by-aggregate'),
    triggerLinks: db('trigger-links'),
    effects: db<number>('effects'),
    effectsByAggregate: db('effects-by-aggregate'),
    keys: db('keys'),
    keyExpiry: db('key-expiry'),
    projections: db('projections'),
    idempotency: db<string>('idempotency'),
    snapshots: db('snapshots'),
    latest: db('latest'),
  };
  try {
    return { ...store, latestFrom: checkFormat(store, path) };
  } catch (e) {
    root.close();
    throw e;
  }
}

/** Checks the format, upgrading an older store; returns the first seq the `latest` index covers. */
function checkFormat(store: Omit<Store, 'latestFrom'>, path: string): number {
  const stored = store.meta.get('format');
  const version: unknown = stored === undefined ? undefined : packr.unpack(stored);
  if (version !== undefined && (typeof version !== 'number' || version > FORMAT_VERSION)) {
    throw new UnsupportedFormatError(
      `${path}: expected a store of format ${FORMAT_VERSION} or older, got format ${String(version)}; upgrade coherence to open it`,
    );
  }
  const latestFrom = () => packr.unpack(store.meta.get('latest-from') as Buffer) as number;
  if (version === FORMAT_VERSION) return latestFrom();
  // A new store, or an older one being upgraded (under the write lock, once).
  return store.meta.transactionSync(() => {
    const now = store.meta.get('format');
    const found = now === undefined ? undefined : (packr.unpack(now) as number);
    if (found === undefined || found < FORMAT_VERSION) {
      // `latest` covers what is written from now on.
      if (found === undefined || found < 2) store.meta.putSync('latest-from', packr.pack(lastSeq(store) + 1));
      if (found !== undefined) linkTriggersOnce(store);
      store.meta.putSync('format', packr.pack(FORMAT_VERSION));
    }
    return latestFrom();
  });
}

/**
 * The upgrade from format 1 or 2, inside its transaction: every (trigger, aggregate) of the
 * per-action `by-trigger` index, linked once at its first seq, and that index emptied. Its keys
 * come in trigger then seq order, so the first entry of each pair is its first link.
 */
function linkTriggersOnce(store: Omit<Store, 'latestFrom'>): void {
  const byTrigger = store.root.openDB<Buffer, Key>({ name: 'by-trigger', encoding: 'binary', cache: false });
  for (const { key, value } of byTrigger.getRange({ snapshot: false })) {
    const [kind, id, seq] = key as [string, Identity[1], number];
    putLink(store, [kind, id], packr.unpack(value) as Identity, seq);
  }
  byTrigger.clearSync();
}

/** The `latest` entry of an aggregate, as stored. */
export function encodeLatest(seq: number): Buffer {
  const value = Buffer.allocUnsafe(8);
  value.writeDoubleBE(seq);
  return value;
}

/**
 * Puts the `latest` entry of an aggregate, inside a write transaction callback. lmdb-js runs a
 * put there at once and LMDB copies the value, so one buffer serves every put of a seq (this
 * runs for every action written).
 */
export function putLatest(store: Store, aggregate: Identity, seq: number): void {
  seqValue.writeDoubleBE(seq);
  store.latest.put(asKey(aggregate), seqValue);
}

const seqValue = Buffer.alloc(8);

/** lmdb-js's largest key at the default page size, in bytes. */
const MAX_KEY_BYTES = 1978;

/** At most the bytes of one identity part in an LMDB key (ordered-binary: up to 3 per UTF-16 unit, an escape, a separator). */
function partBytes(part: Identity[1]): number {
  return typeof part === 'number' ? 10 : 3 * part.length + 2;
}

/**
 * The `trigger-links` key of a trigger and an aggregate: both identities, or when they could be
 * too long for one LMDB key together, the trigger and the SHA-256 of the aggregate's msgpack
 * bytes (base64url: three parts, never the four of the other form), the aggregate then following
 * the seq in the value. The hash is part of the store format, so its input is the identity's
 * stored encoding, not an in-memory key.
 */
export function linkKeyOf(trigger: Identity, aggregate: Identity): Identity[1][] {
  const bytes = partBytes(trigger[0]) + partBytes(trigger[1]) + partBytes(aggregate[0]) + partBytes(aggregate[1]);
  if (bytes <= MAX_KEY_BYTES) return [trigger[0], trigger[1], aggregate[0], aggregate[1]];
  return [trigger[0], trigger[1], createHash('sha256').update(packr.pack(aggregate)).digest('base64url')];
}

/** Whether a `trigger-links` key is the hashed form (the aggregate is then in the value). */
function isHashed(key: readonly Identity[1][]): boolean {
  return key.length === 3;
}

/**
 * Links `aggregate` to `trigger` at `seq`, inside a write transaction callback, unless it is
 * linked already (at an earlier seq, which stays). The seq is written from one buffer, as
 * {@link putLatest}'s is.
 */
export function putLink(store: Pick<Store, 'triggerLinks'>, trigger: Identity, aggregate: Identity, seq: number): void {
  const key = linkKeyOf(trigger, aggregate);
  if (store.triggerLinks.getBinaryFast(key) !== undefined) return;
  if (!isHashed(key)) {
    seqValue.writeDoubleBE(seq);
    store.triggerLinks.put(key, seqValue);
    return;
  }
  const packed = packr.pack(aggregate);
  const value = Buffer.allocUnsafe(8 + packed.length);
  value.writeDoubleBE(seq);
  value.set(packed, 8);
  store.triggerLinks.put(key, value);
}

/** The link stored for `trigger` and `aggregate`: the seq of the first action that made it. */
export function linkedAt(store: Pick<Store, 'triggerLinks'>, trigger: Identity, aggregate: Identity): { seq: number; aggregate: Identity } | undefined {
  const key = linkKeyOf(trigger, aggregate);
  const value = store.triggerLinks.getBinary(key);
  return value === undefined ? undefined : readLink(key, value);
}

/** A `trigger-links` entry as the link it stores. */
export function readLink(key: Key, value: Buffer): { seq: number; aggregate: Identity } {
  const parts = key as Identity[1][];
  const seq = value.readDoubleBE(0);
  const aggregate = isHashed(parts) ? (packr.unpack(value.subarray(8)) as Identity) : ([parts[2], parts[3]] as Identity);
  return { seq, aggregate };
}

/** The trigger a `trigger-links` key is under. */
export function linkTrigger(key: Key): Identity {
  const [kind, id] = key as [string, Identity[1]];
  return [kind, id];
}

/** Every link of `trigger` (in key order), as stored. */
export function* triggerLinks(store: Pick<Store, 'triggerLinks'>, trigger: Identity): Generator<{ seq: number; aggregate: Identity }> {
  for (const { key, value } of store.triggerLinks.getRange({ start: [trigger[0], trigger[1]], end: [trigger[0], trigger[1], AFTER_EVERY_PART] })) {
    yield readLink(key, value);
  }
}

/** A key part that sorts after every identity part and hash (ordered-binary writes its byte as is). */
const AFTER_EVERY_PART = Uint8Array.of(0xff);

/** An identity as an LMDB key: the validated [kind, id] array itself, which lmdb-js only reads (a copy would encode the same). */
export function asKey(identity: Identity): Key {
  return identity as unknown as Key;
}

/** The index key of `seq` under an identity. */
export function indexKey(identity: Identity, seq: number): Key {
  return [identity[0], identity[1], seq];
}

/** The seqs indexed under `identity` in [from, to), ascending. */
export function* indexedSeqs(index: Database<Buffer, Key>, identity: Identity, from: number, to = MAX_SEQ): Generator<number> {
  for (const key of index.getKeys({ start: [identity[0], identity[1], from], end: [identity[0], identity[1], to] })) {
    yield (key as [string, string | number, number])[2];
  }
}

/** The highest seq in the log, 0 when it is empty. */
export function lastSeq(store: Pick<Store, 'events'>): number {
  for (const key of store.events.getKeys({ reverse: true, limit: 1 })) return key;
  return 0;
}
