/**
 * Value envelopes: one encrypted JSON value, bound to where it lives.
 *
 * Stored as `[version][24-byte nonce][ciphertext || 16-byte tag]` in the record (a msgpack
 * binary, which no JSON value can be). The cipher is XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha,
 * see aead.ts): its 192-bit nonces can be drawn at random for every value without any
 * realistic risk of reuse under one key. The associated data names the aggregate, the operation
 * path and the key, so a ciphertext moved to another place fails authentication.
 */
import { randomBytes } from 'node:crypto';
import { CorruptLogError } from '../errors.ts';
import type { Identity } from '../model/types.ts';
import { packr } from '../model/msgpack.ts';
import { decodeInPlace, isUndecodable } from './plaintext.ts';
import { openSealed, sealBytes } from './seal.ts';
import { xchachaOpenWith, xchachaSeal } from './aead.ts';

const ENVELOPE_VERSION = 1;
/** A value sealed under several keys together (coherence's own process states): see seal.ts. */
const SEALED_ENVELOPE_VERSION = 2;
const NONCE_BYTES = 24;
const SALT_BYTES = 32;
const textEncoder = new TextEncoder();

/**
 * How `read({ raw: true })` shows an encrypted value: the stored bytes, base64, with the key(s)
 * they need. It carries no plaintext. Values appended with `encrypt: { key }` are
 * `xchacha20-poly1305` envelopes; coherence's own process states, folded from values under
 * several keys, are `sealed` under all of them.
 */
export type Envelope =
  | {
      envelope: 'xchacha20-poly1305';
      key: Identity;
      /** base64 of version, nonce, ciphertext and tag, as stored. */
      data: string;
    }
  | {
      envelope: 'sealed';
      keys: Identity[];
      /** base64 of version, salt, ciphertext and tag, as stored. */
      data: string;
    };

/** Associated data as a string: the cipher encodes it (UTF-8) where it works. */
function associatedData(aggregate: Identity, path: string, key: Identity): string {
  return `coherence/value/v1\u0000${JSON.stringify([aggregate, path, key])}`;
}

/** Draws the nonces of `count` envelopes in one call to the system's random source. */
export function drawNonces(count: number): Buffer {
  return randomBytes(count * NONCE_BYTES);
}

/** Encrypts one JSON value; `nonces` and `index` pick its nonce from a batch drawn at once. */
export function sealValue(value: unknown, key: Uint8Array, keyId: Identity, aggregate: Identity, path: string, nonces: Buffer, index: number): Uint8Array {
  const nonce = nonces.subarray(index * NONCE_BYTES, (index + 1) * NONCE_BYTES);
  // The cipher leaves room for the header, so the envelope is written once.
  const envelope = xchachaSeal(key, nonce, associatedData(aggregate, path, keyId), packr.pack(value), 1 + NONCE_BYTES);
  envelope[0] = ENVELOPE_VERSION;
  envelope.set(nonce, 1);
  return envelope;
}

/**
 * Decrypts one envelope.
 * @throws CorruptLogError when it fails authentication: tampering or corruption, never redacted.
 */
export function openValue(envelope: Uint8Array, key: Uint8Array, keyId: Identity, aggregate: Identity, path: string, seq: number): unknown {
  if (envelope[0] !== ENVELOPE_VERSION || envelope.length < 1 + NONCE_BYTES + 16) {
    throw new CorruptLogError(`event ${seq}: the encrypted value at ${path} is not an envelope`);
  }
  try {
    // Decoded where the cipher opened it, then wiped there: the plaintext bytes are never copied.
    return xchachaOpenWith(key, envelope.subarray(1, 1 + NONCE_BYTES), associatedData(aggregate, path, keyId), envelope.subarray(1 + NONCE_BYTES), decodeInPlace);
  } catch (cause) {
    if (isUndecodable(cause)) throw new CorruptLogError(`event ${seq}: the encrypted value at ${path} opens to bytes that are not a value`);
    throw new CorruptLogError(`event ${seq}: the encrypted value at ${path} fails authentication (tampered or corrupt)`, { cause });
  }
}

function sealedAssociatedData(aggregate: Identity, path: string, keys: readonly Identity[]): Uint8Array {
  return textEncoder.encode(`coherence/value/v2\u0000${JSON.stringify([aggregate, path, keys])}`);
}

/**
 * Encrypts one JSON value under several keys at once (`materials` in the order of `keyIds`):
 * it opens only while every one of them exists. `salt` is fresh for the value.
 */
export function sealValueUnderAll(value: unknown, materials: readonly Uint8Array[], keyIds: readonly Identity[], aggregate: Identity, path: string, salt: Uint8Array): Uint8Array {
  const sealed = sealBytes(packr.pack(value), materials, salt, sealedAssociatedData(aggregate, path, keyIds));
  const envelope = new Uint8Array(1 + SALT_BYTES + sealed.length);
  envelope[0] = SEALED_ENVELOPE_VERSION;
  envelope.set(salt, 1);
  envelope.set(sealed, 1 + SALT_BYTES);
  return envelope;
}

/**
 * Decrypts what {@link sealValueUnderAll} sealed.
 * @throws CorruptLogError when it fails authentication.
 */
export function openValueUnderAll(envelope: Uint8Array, materials: readonly Uint8Array[], keyIds: readonly Identity[], aggregate: Identity, path: string, seq: number): unknown {
  if (envelope[0] !== SEALED_ENVELOPE_VERSION || envelope.length < 1 + SALT_BYTES + 16) {
    throw new CorruptLogError(`event ${seq}: the encrypted value at ${path} is not a sealed envelope`);
  }
  return openSealed(envelope.subarray(1 + SALT_BYTES), materials, envelope.subarray(1, 1 + SALT_BYTES), sealedAssociatedData(aggregate, path, keyIds), `event ${seq}: the encrypted value at ${path}`);
}

/** The raw form of an envelope under `keyIds` (one key: xchacha20-poly1305; several: sealed). */
export function toEnvelope(envelope: Uint8Array, keyIds: readonly Identity[]): Envelope {
  const data = Buffer.from(envelope).toString('base64');
  return keyIds.length === 1 ? { envelope: 'xchacha20-poly1305', key: keyIds[0] as Identity, data } : { envelope: 'sealed', keys: [...keyIds], data };
}
