import type { Duration } from '../model/duration.ts';
import type { EffectEvent, Identity } from '../model/types.ts';

export type { Duration };

/** What the key ring tells about a key. Key material never leaves the ring. */
export interface KeyInfo {
  key: Identity;
  createdAt: Date;
  /** After this instant the key decrypts nothing, even before it is shredded. */
  expiresAt?: Date;
  /** When the key material was destroyed (shredded or expired). */
  destroyedAt?: Date;
  /** Why it was destroyed: the effect's reason. */
  reason?: string;
}

/**
 * The key ring of a log (`log.keys`): 32-byte random keys, stored wrapped under a key derived
 * from the master key, each destroyed together with the effect that tells every reader.
 */
export interface Keys {
  /**
   * Creates a key. Encrypting with an unknown key creates it too (with the log's `keyTtl`).
   * @throws InvalidArgumentError for a bad identity, both `expiresAt` and `ttl`, a `ttl` that is
   *   not a date-fns Duration, an expiry not in the future, or a key that exists already.
   * @throws KeyDestroyedError when the key was destroyed: keys are never reused.
   * @throws MissingMasterKeyError when the log was opened without a master key.
   * @example
   * await log.keys.create(['user', 'alice'], { ttl: { years: 1 } });
   */
  create(key: Identity, options?: { expiresAt?: Date; ttl?: Duration }): Promise<KeyInfo>;

  /**
   * What the ring knows of a key, destroyed or not; undefined when it never existed.
   * @throws InvalidArgumentError for a bad identity.
   * @example
   * const info = await log.keys.get(['user', 'alice']);
   */
  get(key: Identity): Promise<KeyInfo | undefined>;

  /**
   * Every key, or only the destroyed (`destroyed: true`) or the live (`destroyed: false`) ones.
   * @example
   * for await (const info of log.keys.list({ destroyed: false })) console.log(info.key);
   */
  list(options?: { destroyed?: boolean }): AsyncIterable<KeyInfo>;

  /**
   * Destroys the key material and appends the effect `{ reason, trigger: key }` in the same
   * transaction. Once this returns, no process with the store open decrypts with the key, and
   * every projection that catches up forgets what it protected. Shredding a key that never
   * existed records it as destroyed, so it can never be created later.
   * @throws KeyDestroyedError when the key is already destroyed.
   * @throws InvalidArgumentError for a bad identity, reason or source.
   * @example
   * const effect = await log.keys.shred(['user', 'alice'], { reason: 'erasure request' });
   */
  shred(key: Identity, options?: { reason?: string; source?: string }): Promise<EffectEvent>;

  /**
   * Shreds every live key whose expiry is at or before `now` (default: the log's clock), with
   * reason `'key-expired'`, and returns the effects. Keys past their expiry decrypt nothing even
   * before this runs; this makes the erasure visible to projections and frees the material.
   * @throws InvalidArgumentError when `now` is not a valid Date.
   * @example
   * const effects = await log.keys.expire();
   */
  expire(now?: Date): Promise<EffectEvent[]>;
}
