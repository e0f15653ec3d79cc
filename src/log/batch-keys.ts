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
  /** The records of the keys drawn for this batch, to store with it. */
  readonly rows: readonly KeyRow[];
}

interface Prepared {
  key: Identity;
  material: Uint8Array;
  wrapped: Uint8Array;
  /** The record as read before the write (none for a key drawn for this batch). */
  stored: Uint8Array | undefined;
  /** The record to store when the key was drawn for this batch. */
  fresh: KeyRecord | undefined;
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
  const known = keys.map((key) => cache.known(key));
  const unknown = keys.filter((_, i) => known[i] === undefined);
  const read = unknown.length === 0 ? [] : await storage.keyRecords(unknown);
  let next = 0;
  const prepared: Prepared[] = keys.map((key, i) => {
    const seen = known[i];
    if (seen !== undefined) return { key, material: seen.material, wrapped: usableWrapped(key, seen.record, now), stored: seen.stored, fresh: undefined };
    const stored = read[next++];
    if (stored !== undefined) {
      const record = decodeKeyRecord(stored);
      const wrapped = usableWrapped(key, record, now);
      const material = cache.material(key, wrapped);
      cache.saw(key, stored, record);
      return { key, material, wrapped, stored, fresh: undefined };
    }
    const material = newDataKey();
    const wrapped = wrapKey(kek, key, material);
    return { key, material, wrapped, stored: undefined, fresh: { createdAt: now, expiresAt, destroyedAt: null, reason: null, wrapped } };
  });
  const rowsOf = (drawn: readonly Prepared[]): KeyRow[] =>
    drawn.flatMap(({ key, fresh }) => (fresh === undefined ? [] : [{ key, record: encodeKeyRecord(fresh), expiresAt: fresh.expiresAt, indexedExpiresAt: null }]));
  const materialOf = (keys: readonly Prepared[]) => new Map(keys.map((p) => [identityKey(p.key), { key: p.material }]));
  return {
    material: materialOf(prepared),
    created: prepared.some((p) => p.fresh !== undefined),
    recheck: (view) => {
      let changed = false;
      const now_ = prepared.map((p): Prepared => {
        const stored = view.key(p.key);
        // The very record read before (and the same `now`): nothing to decode or decide again.
        if (stored !== undefined && p.stored !== undefined && Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(p.stored)) return p;
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
    rows: rowsOf(prepared),
  };
}

