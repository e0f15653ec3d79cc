/**
 * Decoding a value's plaintext where the cipher opened it (aead.ts `openWith`), so no copy of
 * its bytes is made, and without ever quoting them: msgpackr's own errors can (for trailing
 * bytes its message shows the value it read), so they are replaced by one that says nothing.
 */
import { packr } from '../model/msgpack.ts';

/** What {@link decodeInPlace} throws: the plaintext was authentic but is not one msgpack value. */
const UNDECODABLE = new Error('the plaintext is not one value');

/**
 * The value packed in bytes [start, end) of `bytes` (buffers in it are copied out: the packr's
 * copyBuffers), for `openWith`.
 * @throws Error, the same one every time and quoting nothing, when they are not one value (see {@link isUndecodable}).
 * @example
 * const value = xchachaOpenWith(key, nonce, associatedData, sealed, decodeInPlace);
 */
export function decodeInPlace(bytes: Uint8Array, start: number, end: number): unknown {
  try {
    return packr.unpack(bytes, { start, end });
  } catch {
    throw UNDECODABLE;
  }
}

/**
 * Whether `error` is {@link decodeInPlace}'s: an authentic plaintext that is not one value.
 * @example
 * if (isUndecodable(cause)) throw new CorruptLogError(`${what}: opens to bytes that are not a value`);
 */
export function isUndecodable(error: unknown): boolean {
  return error === UNDECODABLE;
}
