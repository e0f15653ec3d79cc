/**
 * The LMDB layout of a store: one environment in the store directory, with these databases.
 *
 *   meta                  string key -> bytes      format version and store-wide values
 *   events                seq -> record            the log itself (see log/record.ts)
 *   by-aggregate          [kind, id, seq] -> ''    every action, by the aggregate it changes
 *   by-trigger            [kind, id, seq] -> aggregate (msgpack)
 *                                                  every action, by each trigger it links to
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
 * An effect's affected aggregates are worked out once, when it is written; so the conflict
 * check of an action is two range scans starting at `[aggregate, base + 1]`, O(log n +
 * conflicts found), whatever the length of the log; and when `latest` says nothing touched the
 * aggregate after the base, one lookup. Stores written by 0.1.0 have the same layout without
 * `idempotency`, `snapshots` and `latest`, which are created when first opened (`latest` holds
 * what was written since: `latest-from` is the first seq it covers).
 */
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import { UnsupportedFormatError } from '../../errors.ts';
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';

/**
 * Version of the on-disk format; a store with a higher one is refused. 2 (coherence 0.2): records
 * may carry extras (schema versions, idempotency keys), projection states may be sealed, and the
 * `idempotency` and `snapshots` databases exist. A format-1 store (0.1.0) is upgraded when opened:
 * its records and states read as they are, and 0.1.0 then refuses the store rather than misread it.
 */
export const FORMAT_VERSION = 2;

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
  readonly byTrigger: Database<Buffer, Key>;
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
    ['meta', store.meta], ['events', store.events], ['by-aggregate', store.byAggregate], ['by-trigger', store.byTrigger],
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
    byTrigger: db('by-trigger'),
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
  // A new store, or an older one being upgraded (under the write lock, once): `latest` covers
  // what is written from now on.
  return store.meta.transactionSync(() => {
    const now = store.meta.get('format');
    if (now === undefined || (packr.unpack(now) as number) < FORMAT_VERSION) {
      store.meta.putSync('latest-from', packr.pack(lastSeq(store) + 1));
      store.meta.putSync('format', packr.pack(FORMAT_VERSION));
    }
    return latestFrom();
  });
}

/** The `latest` entry of an aggregate, as stored. */
export function encodeLatest(seq: number): Buffer {
  const value = Buffer.allocUnsafe(8);
  value.writeDoubleBE(seq);
  return value;
}

/**
 * Puts the `latest` entry of an aggregate, inside a write transaction callback. lmdb-js runs a
 * put there at once and LMDB copies the value, so one buffer serves every put (this runs for
 * every action written).
 */
export function putLatest(store: Store, aggregate: Identity, seq: number): void {
  latestValue.writeDoubleBE(seq);
  store.latest.put(asKey(aggregate), latestValue);
}

const latestValue = Buffer.alloc(8);

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
