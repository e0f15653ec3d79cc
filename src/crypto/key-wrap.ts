/**
 * Key wrapping: the master key, the key-encryption key (KEK) derived from it per store, and data
 * keys wrapped under the KEK. Pure functions; where the wrapped keys live is the key ring's business.
 *
 * wrapped = nonce(24) || XChaCha20-Poly1305(KEK, key) with `coherence/key/v1\0` + JSON(identity)
 * as associated data, so a wrapped key moved to another identity fails authentication.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CorruptLogError, InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { Identity } from '../model/types.ts';
import { xchachaOpen, xchachaSeal } from './aead.ts';

/** Bytes of a master key, a KEK and a data key. */
export const KEY_BYTES = 32;
const NONCE_BYTES = 24;
const textEncoder = new TextEncoder();

/**
 * Accepts 32 bytes or 64 hex characters and returns a copy the caller may wipe.
 * @throws InvalidArgumentError otherwise (without echoing the value: it is a secret).
 */
export function parseMasterKey(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    if (value.length !== KEY_BYTES) throw new InvalidArgumentError(`options.masterKey: expected 32 bytes, got ${value.length} bytes`);
    return Uint8Array.from(value);
  }
  if (typeof value === 'string') {
    if (!/^[0-9a-fA-F]{64}$/.test(value)) throw new InvalidArgumentError(`options.masterKey: expected 64 hex characters, got a string of ${value.length} characters that is not that`);
    return Uint8Array.from(Buffer.from(value, 'hex'));
  }
  throw new InvalidArgumentError(`options.masterKey: expected a Uint8Array of 32 bytes or 64 hex characters, got ${describe(value)}`);
}

function derive(masterKey: Uint8Array, salt: Uint8Array, purpose: string): Uint8Array {
  // HKDF (RFC 5869) with a per-store random salt: one master key yields unrelated keys per store.
  return hkdf(sha256, masterKey, salt, textEncoder.encode(`coherence/${purpose}/v1`), KEY_BYTES);
}

/** A fresh store's salt and the check value that later tells the master key from any other. */
export function newKekSalt(masterKey: Uint8Array): { salt: Uint8Array; check: Uint8Array } {
  const salt = Uint8Array.from(randomBytes(KEY_BYTES));
  return { salt, check: derive(masterKey, salt, 'check') };
}

/** Whether `masterKey` is the one `check` was made with (in constant time). */
export function isMasterKey(masterKey: Uint8Array, salt: Uint8Array, check: Uint8Array): boolean {
  const derived = derive(masterKey, salt, 'check');
  return derived.length === check.length && timingSafeEqual(derived, check);
}

/** The store's key-encryption key. */
export function deriveKek(masterKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return derive(masterKey, salt, 'kek');
}

function keyAd(key: Identity): Uint8Array {
  return textEncoder.encode(`coherence/key/v1\u0000${JSON.stringify(key)}`);
}

/** Draws a new data key. */
export function newDataKey(): Uint8Array {
  return Uint8Array.from(randomBytes(KEY_BYTES));
}

/** Wraps a data key under the KEK, bound to its identity. */
export function wrapKey(kek: Uint8Array, key: Identity, material: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  return Buffer.concat([nonce, xchachaSeal(kek, nonce, keyAd(key), material)]);
}

/**
 * Unwraps a data key.
 * @throws CorruptLogError when the wrapped bytes fail authentication.
 */
export function unwrapKey(kek: Uint8Array, key: Identity, wrapped: Uint8Array): Uint8Array {
  try {
    const opened = xchachaOpen(kek, wrapped.subarray(0, NONCE_BYTES), keyAd(key), wrapped.subarray(NONCE_BYTES));
    // The material in an array of its own (node's buffer may share its memory), the copy wiped.
    const material = Uint8Array.from(opened);
    opened.fill(0);
    return material;
  } catch (cause) {
    throw new CorruptLogError(`key ${JSON.stringify(key)}: the wrapped key fails authentication`, { cause });
  }
}
