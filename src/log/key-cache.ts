/**
 * Unwrapped data keys of one open log, with the KEK that unwraps them. The cache saves the
 * unwrapping, never the check: every use is preceded by a read of the key's record from the
 * store, and a cached key is used only if its wrapped bytes are still the stored ones.
 */
import { MissingMasterKeyError } from '../errors.ts';
import { unwrapKey } from '../crypto/key-wrap.ts';
import { wipeXchachaMemory } from '../crypto/xchacha.ts';
import type { Identity } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';

export class KeyCache {
  readonly #kek: Uint8Array | undefined;
  readonly #keys = new Map<string, { wrapped: Buffer; key: Uint8Array }>();

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
    wipeXchachaMemory();
  }

  /** Wipes every key from memory, and what the cipher's last use left behind. */
  clear(): void {
    for (const { key } of this.#keys.values()) key.fill(0);
    this.#keys.clear();
    wipeXchachaMemory();
  }
}
