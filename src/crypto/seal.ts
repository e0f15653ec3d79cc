/**
 * Sealing: bytes encrypted so that they open only while every one of a set of keys exists. Used
 * for what is derived from encrypted values and kept at rest (projection states, snapshots,
 * process states), so that destroying any key they came from makes them unreadable at once.
 *
 * Construction: the record's key is HMAC-SHA256(salt, "coherence/seal/v1" || 0 || K1 || ... || Kn)
 * over the contributing keys in a fixed order, with a fresh random 32-byte salt per record. That
 * is HKDF-Extract (RFC 5869 §2.2); the inputs are uniformly random keys, so its output is a
 * uniformly random key that exists only while all of K1..Kn do: destroying any one of them
 * leaves it out of reach, with no wrapped copy anywhere to find. Each record key is used once,
 * so ChaCha20-Poly1305 (RFC 8439) runs with an all-zero nonce; the associated data binds the
 * ciphertext to its owner, aggregate and key list. The HMAC is node's; the cipher is aead.ts's
 * (libsodium once loaded): the seal sits on the catch-up hot path, once per state written.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { CorruptLogError } from '../errors.ts';
import { chachaOpenWith, chachaSeal, TAG_BYTES } from './aead.ts';
import { decodeInPlace, isUndecodable } from './plaintext.ts';

const SALT_BYTES = 32;
const NONCE = Buffer.alloc(12);
const DOMAIN = Buffer.from('coherence/seal/v1\u0000');

function recordKey(materials: readonly Uint8Array[], salt: Uint8Array): Buffer {
  const hmac = createHmac('sha256', salt).update(DOMAIN);
  for (const material of materials) hmac.update(material);
  return hmac.digest();
}

/** Draws the salts of `count` records in one call to the system's random source. */
export function drawSalts(count: number): Buffer[] {
  const pool = randomBytes(count * SALT_BYTES);
  return Array.from({ length: count }, (_, i) => pool.subarray(i * SALT_BYTES, (i + 1) * SALT_BYTES));
}

/** Encrypts `plaintext` under the key derived from `materials` (in order) and `salt`. */
export function sealBytes(plaintext: Uint8Array, materials: readonly Uint8Array[], salt: Uint8Array, ad: Uint8Array): Uint8Array {
  const key = recordKey(materials, salt);
  try {
    return chachaSeal(key, NONCE, ad, plaintext);
  } finally {
    key.fill(0);
  }
}

/**
 * Decrypts what {@link sealBytes} sealed and decodes the value packed in it where the cipher
 * opened it, wiping it there: no copy of the plaintext is made.
 * @throws CorruptLogError when it fails authentication (tampering, or not the keys it was sealed
 *   under), or opens to bytes that are not one value (the error quotes none of them).
 * @example
 * const state = openSealed(ciphertext, materials, salt, associatedData, 'the state of ["book","b1"] in "titles"');
 */
export function openSealed(sealed: Uint8Array, materials: readonly Uint8Array[], salt: Uint8Array, ad: Uint8Array, what: string): unknown {
  if (sealed.length < TAG_BYTES) throw new CorruptLogError(`${what}: the sealed record is too short`);
  const key = recordKey(materials, salt);
  try {
    return chachaOpenWith(key, NONCE, ad, sealed, decodeInPlace);
  } catch (cause) {
    if (isUndecodable(cause)) throw new CorruptLogError(`${what}: the sealed record opens to bytes that are not a value`);
    throw new CorruptLogError(`${what}: the sealed record fails authentication (tampered or corrupt)`, { cause });
  } finally {
    key.fill(0);
  }
}
