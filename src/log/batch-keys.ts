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
  /** The record to store when the key was drawn for this batch. */
  fresh: KeyRecord | undefined;
}

/**
 * Reads the records of `keys`, unwraps the live ones and draws (without storing) the missing.
 * @throws KeyDestroyedError when one is destroyed or expired.
 * @throws MissingMasterKeyError without a master key.
 */
export async function prepareBatchKeys(storage: Storage, cache: KeyCache, keys: readonly Identity[], now: number, expiresAt: number | null): Promise<BatchKeys> {
  const kek = cache.kek();
  const records = await storage.keyRecords(keys);
  const prepared: Prepared[] = keys.map((key, i) => {
    const stored = records[i];
    if (stored !== undefined) {
      const wrapped = usableWrapped(key, decodeKeyRecord(stored), now);
      return { key, material: cache.material(key, wrapped), wrapped, fresh: undefined };
    }
    const material = newDataKey();
    const wrapped = wrapKey(kek, key, material);
    return { key, material, wrapped, fresh: { createdAt: now, expiresAt, destroyedAt: null, reason: null, wrapped } };
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
        const record = stored === undefined ? undefined : decodeKeyRecord(stored);
        if (p.fresh === undefined) {
          if (!Buffer.from(usableWrapped(p.key, record, now)).equals(p.wrapped)) throw new KeyDestroyedError(`key ${JSON.stringify(p.key)} changed while the append was prepared`);
          return p;
        }
        if (record === undefined) return p;
        // Another writer created the key meanwhile (or destroyed it: that throws): use theirs.
        const wrapped = usableWrapped(p.key, record, now);
        changed = true;
        return { key: p.key, material: cache.material(p.key, wrapped), wrapped, fresh: undefined };
      });
      return changed ? { material: materialOf(now_), rows: rowsOf(now_) } : undefined;
    },
    rows: rowsOf(prepared),
  };
}

