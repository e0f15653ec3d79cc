/**
 * Unwrapped data keys of one open log, with the KEK that unwraps them. The cache saves the
 * unwrapping, never the check: every use is checked against the key's record in the store, and a
 * cached key is used only if its wrapped bytes are still the stored ones. Readers read the record
 * before they decrypt; an append may encrypt under the record it saw last ({@link KeyCache.known})
 * because it checks that record inside its write transaction, before anything is written.
 */
import { MissingMasterKeyError } from '../errors.ts';
import { unwrapKey } from '../crypto/key-wrap.ts';
import { wipeCipherMemory } from '../crypto/aead.ts';
import type { KeyRecord } from '../crypto/key-record.ts';
import type { Identity } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';

/** A key record as stored, and decoded. */
export interface SeenRecord {
  readonly stored: Uint8Array;
  readonly record: KeyRecord;
}

interface Cached {
  wrapped: Buffer;
  key: Uint8Array;
  seen?: SeenRecord;
  /** The store's newest effect when `seen` was read there (see Storage.keyRecords). */
  readAfterEffect?: number | undefined;
}

export class KeyCache {
  readonly #kek: Uint8Array | undefined;
  readonly #keys = new Map<string, Cached>();
  #lastEffect: number | undefined;

  constructor(kek: Uint8Array | undefined) {
    this.#kek = kek;
  }

  /** @throws MissingMasterKeyError when the log was opened without a master key. */
  kek(): Uint8Array {
    if (this.#kek === undefined) throw new MissingMasterKeyError('encryption needs the log to be opened with a masterKey');
    return this.#kek;
  }

  /**
   * The key material for the stored `wrapped` bytes of `key`.
   * @throws MissingMasterKeyError without a master key.
   * @throws CorruptLogError when the wrapped bytes fail authentication.
   */
  material(key: Identity, wrapped: Uint8Array): Uint8Array {
    const id = identityKey(key);
    const cached = this.#keys.get(id);
    if (cached !== undefined && cached.wrapped.equals(wrapped)) return cached.key;
    const material = unwrapKey(this.kek(), key, wrapped);
    this.#keys.set(id, { wrapped: Buffer.from(wrapped), key: material });
    return material;
  }

  /**
   * Notes the stored record the material of `key` came from (after {@link KeyCache.material} for
   * it), for {@link KeyCache.known}.
   */
  saw(key: Identity, stored: Uint8Array, record: KeyRecord, lastEffect?: number): void {
    const cached = this.#keys.get(identityKey(key));
    if (cached === undefined || record.wrapped === null || !cached.wrapped.equals(record.wrapped)) return;
    cached.seen = { stored, record };
    cached.readAfterEffect = lastEffect;
  }

  /** The newest effect this log has read from the store (see Storage.keyRecords); undefined before the first. */
  get lastEffect(): number | undefined {
    return this.#lastEffect;
  }

  /** Notes the newest effect a read of key records found. */
  noteLastEffect(seq: number): void {
    if (this.#lastEffect === undefined || seq > this.#lastEffect) this.#lastEffect = seq;
  }

  /**
   * The record of the key whose identity key is `id`, and its material, when it was read from the
   * store after the store's newest effect was `lastEffect` (noted by {@link KeyCache.saw}): while
   * no effect has been written since, that record is still the stored one, so a reader need not
   * read it again.
   */
  unchangedSince(id: string, lastEffect: number): { record: KeyRecord; material: Uint8Array } | undefined {
    const cached = this.#keys.get(id);
    if (cached?.seen === undefined || cached.readAfterEffect !== lastEffect) return undefined;
    return { record: cached.seen.record, material: cached.key };
  }

  /**
   * The record of `key` this process saw last, with its material, without reading the store; to
   * be checked against the store before it is relied on. Undefined when it holds no material.
   */
  known(key: Identity): (SeenRecord & { material: Uint8Array; readAfterEffect: number | undefined }) | undefined {
    const cached = this.#keys.get(identityKey(key));
    return cached?.seen === undefined ? undefined : { stored: cached.seen.stored, record: cached.seen.record, material: cached.key, readAfterEffect: cached.readAfterEffect };
  }

  /**
   * The material this process holds for `key`, without reading the store: what it decrypted with
   * last. Undefined once it saw the key destroyed (or never used it).
   */
  held(key: Identity): Uint8Array | undefined {
    return this.#keys.get(identityKey(key))?.key;
  }

  /** Wipes one key from memory (it was destroyed), and what the cipher's last use left behind. */
  forget(key: Identity): void {
    const id = identityKey(key);
    const cached = this.#keys.get(id);
    if (cached === undefined) return;
    cached.key.fill(0);
    this.#keys.delete(id);
    wipeCipherMemory();
  }

  /** Wipes every key from memory, and what the cipher's last use left behind. */
  clear(): void {
    for (const { key } of this.#keys.values()) key.fill(0);
    this.#keys.clear();
    wipeCipherMemory();
  }
}
