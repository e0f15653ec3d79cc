/**
 * The keys an append encrypts with: read before its transaction, checked and (for new ones)
 * stored inside it, so that a dry run, a conflict or a refused batch leaves no key behind, and no
 * ciphertext is ever written under a key whose shred has committed.
 */
import { decodeKeyRecord, encodeKeyRecord, usableWrapped, type KeyRecord } from '../crypto/key-record.ts';
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
   * Inside the write: whether every key is as it was when prepared (false when another
   * connection created a drawn key meanwhile: the batch must be encrypted again).
   * @throws KeyDestroyedError when one was destroyed meanwhile.
   */
  isCurrent(view: WriteView): boolean;
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
  return {
    material: new Map(prepared.map((p) => [identityKey(p.key), { key: p.material }])),
    created: prepared.some((p) => p.fresh !== undefined),
    isCurrent: (view) =>
      prepared.every(({ key, wrapped, fresh }) => {
        const stored = view.key(key);
        const record = stored === undefined ? undefined : decodeKeyRecord(stored);
        if (fresh === undefined) return Buffer.from(usableWrapped(key, record, now)).equals(wrapped);
        if (record !== undefined && record.destroyedAt !== null) usableWrapped(key, record, now);
        return record === undefined;
      }),
    rows: prepared.flatMap(({ key, fresh }) =>
      fresh === undefined ? [] : [{ key, record: encodeKeyRecord(fresh), expiresAt: fresh.expiresAt, indexedExpiresAt: null }],
    ),
  };
}

