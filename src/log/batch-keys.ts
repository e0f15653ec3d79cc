/**
 * The keys an append encrypts with: read before its transaction, checked and (for new ones)
 * stored inside it, so that a dry run, a conflict or a refused batch leaves no key behind, and no
 * ciphertext is ever written under a key whose shred has committed.
 */
import { decodeKeyRecord, encodeKeyRecord, usableWrapped, type KeyRecord } from '../crypto/key-record.ts';
import { KeyDestroyedError } from '../errors.ts';
import { newDataKey, wrapKey } from '../crypto/key-wrap.ts';
import type { Identity } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import type { KeyRow, Storage, WriteView } from '../storage/engine.ts';
import type { KeyCache } from './key-cache.ts';

/** The keys of one append. */
export interface BatchKeys {
  /** Key material by identity key, to encrypt with. */
  readonly material: ReadonlyMap<string, { key: Uint8Array }>;
  /** Whether the batch stores new keys (autoExpire must then look at their expiry). */
  readonly created: boolean;
  /**
   * Inside the write: the keys as they stand now. Undefined when every key is as prepared;
   * otherwise another writer created a key this batch drew meanwhile, and the batch must be
   * encrypted again under the stored one: the keys to do it with (and the rows left to store).
   * @throws KeyDestroyedError when one was destroyed meanwhile.
   */
  recheck(view: WriteView): { material: ReadonlyMap<string, { key: Uint8Array }>; rows: readonly KeyRow[] } | undefined;
  /**
   * Once the write that called `recheck` has committed: notes in the cache the records it read
   * there, with the newest effect then, so the next append need not read them (see KeyCache.saw).
   */
  committed(): void;
  /** The records of the keys drawn for this batch, to store with it. */
  readonly rows: readonly KeyRow[];
}

interface Prepared {
  key: Identity;
  material: Uint8Array;
  wrapped: Uint8Array;
  /** The record as read before the write (none for a key drawn for this batch), and decoded. */
  stored: Uint8Array | undefined;
  record?: KeyRecord | undefined;
  /** The record to store when the key was drawn for this batch. */
  fresh: KeyRecord | undefined;
  /** The store's newest effect when `stored` was read, where known. */
  readAfterEffect?: number | undefined;
}

/**
 * The records of `keys` (the one this process saw last where it holds the key's material, the
 * store's otherwise: `recheck` checks them all inside the write), the live ones unwrapped and
 * the missing drawn (without storing them).
 * @throws KeyDestroyedError when one is destroyed or expired.
 * @throws MissingMasterKeyError without a master key.
 */
export async function prepareBatchKeys(storage: Storage, cache: KeyCache, keys: readonly Identity[], now: number, expiresAt: number | null): Promise<BatchKeys> {
  const kek = cache.kek();
  const prepared: Prepared[] = new Array(keys.length);
  // Keys this process holds from a record it saw: nothing to read before the write checks them.
  let unread: number[] | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as Identity;
    const seen = cache.known(key);
    if (seen === undefined) (unread ??= []).push(i);
    else prepared[i] = { key, material: seen.material, wrapped: usableWrapped(key, seen.record, now), stored: seen.stored, record: seen.record, fresh: undefined, readAfterEffect: seen.readAfterEffect };
  }
  if (unread !== undefined) {
    const read = await storage.keyRecords(unread.map((i) => keys[i] as Identity));
    cache.noteLastEffect(read.lastEffect);
    unread.forEach((i, n) => {
      const key = keys[i] as Identity;
      const stored = read.records[n];
      if (stored !== undefined) {
        const record = decodeKeyRecord(stored);
        const wrapped = usableWrapped(key, record, now);
        const material = cache.material(key, wrapped);
        cache.saw(key, stored, record, read.lastEffect);
        prepared[i] = { key, material, wrapped, stored, record, fresh: undefined, readAfterEffect: read.lastEffect };
        return;
      }
      const material = newDataKey();
      const wrapped = wrapKey(kek, key, material);
      prepared[i] = { key, material, wrapped, stored: undefined, fresh: { createdAt: now, expiresAt, destroyedAt: null, reason: null, wrapped } };
    });
  }
  const rowsOf = (drawn: readonly Prepared[]): KeyRow[] => {
    const rows: KeyRow[] = [];
    for (const { key, fresh } of drawn) if (fresh !== undefined) rows.push({ key, record: encodeKeyRecord(fresh), expiresAt: fresh.expiresAt, indexedExpiresAt: null });
    return rows;
  };
  const materialOf = (keys: readonly Prepared[]) => new Map(keys.map((p) => [identityKey(p.key), { key: p.material }]));
  // What the last recheck read, for `committed`: records are noted with the newest effect only
  // once the transaction they were read in has committed.
  let inWrite: { lastEffect: number; records: { key: Identity; stored: Uint8Array; record: KeyRecord }[] } | undefined;
  return {
    material: materialOf(prepared),
    created: prepared.some((p) => p.fresh !== undefined),
    recheck: (view) => {
      let changed = false;
      const lastEffect = view.lastEffect();
      inWrite = { lastEffect, records: [] };
      const records = inWrite.records;
      const now_ = prepared.map((p): Prepared => {
        // Read after the newest effect there is: a destroy would have come with one, so the
        // record is still the stored one (and the same `now` decided on it).
        if (p.stored !== undefined && p.readAfterEffect === lastEffect) return p;
        const stored = view.key(p.key);
        // The very record read before (and the same `now`): nothing to decide again.
        if (stored !== undefined && p.stored !== undefined && Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(p.stored)) {
          records.push({ key: p.key, stored: p.stored, record: p.record ?? decodeKeyRecord(p.stored) });
          return p;
        }
        const record = stored === undefined ? undefined : decodeKeyRecord(stored);
        if (p.fresh === undefined) {
          let wrapped: Uint8Array;
          try {
            wrapped = usableWrapped(p.key, record, now);
          } catch (error) {
            cache.forget(p.key); // destroyed or expired since this process last saw it
            throw error;
          }
          if (!Buffer.from(wrapped).equals(p.wrapped)) throw new KeyDestroyedError(`key ${JSON.stringify(p.key)} changed while the append was prepared`);
          cache.saw(p.key, stored as Uint8Array, record as KeyRecord);
          records.push({ key: p.key, stored: stored as Uint8Array, record: record as KeyRecord });
          return p;
        }
        if (record === undefined) return p;
        // Another writer created the key meanwhile (or destroyed it: that throws): use theirs.
        const wrapped = usableWrapped(p.key, record, now);
        changed = true;
        return { key: p.key, material: cache.material(p.key, wrapped), wrapped, stored, fresh: undefined };
      });
      return changed ? { material: materialOf(now_), rows: rowsOf(now_) } : undefined;
    },
    committed: () => {
      if (inWrite === undefined) return;
      for (const { key, stored, record } of inWrite.records) cache.saw(key, stored, record, inWrite.lastEffect);
      inWrite = undefined;
    },
    rows: rowsOf(prepared),
  };
}

