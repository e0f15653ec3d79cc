/**
 * Unlocking a store with the master key: the KEK, derived with the store's salt, after the
 * master key is checked against the store's check value (both made on first use).
 */
import { deriveKek, isMasterKey, newKekSalt } from '../crypto/key-wrap.ts';
import { WrongMasterKeyError } from '../errors.ts';
import type { Storage } from '../storage/engine.ts';

/**
 * The store's key-encryption key.
 * @throws WrongMasterKeyError when `masterKey` is not the one the store's keys were wrapped with.
 */
export async function unlockStore(storage: Storage, masterKey: Uint8Array): Promise<Uint8Array> {
  const fresh = newKekSalt(masterKey);
  const stored = await storage.initMeta({ 'kek-salt': fresh.salt, 'kek-check': fresh.check });
  const salt = stored['kek-salt'] as Uint8Array;
  if (!isMasterKey(masterKey, salt, stored['kek-check'] as Uint8Array)) throw new WrongMasterKeyError();
  return deriveKek(masterKey, salt);
}
