/**
 * Identities (and names) as PostgreSQL `bytea`: one column that is both the equality key and the
 * order the contract asks for. `bytea` compares byte by byte, so an encoding whose bytes sort like
 * LMDB's keys gives `ORDER BY` that order with no collation involved:
 *
 *   kind (UTF-8) 0x00 0x01 (id + 2^63, 8 bytes big-endian)   numeric id
 *   kind (UTF-8) 0x00 0x02 id (UTF-8)                          string id
 *
 * Kinds never hold NUL (validation refuses it), so the 0x00 ends the kind: kinds sort by their
 * UTF-8 bytes ("a" before "ab"), then numeric ids ascending, then string ids by UTF-8 bytes. All the
 * identities of one kind lie in [kind 0x00, kind 0x01).
 */
import type { Identity } from '../../model/types.ts';

const NUMBER = 0x01;
const STRING = 0x02;
const OFFSET = 2n ** 63n;

/** The bytes an identity is stored and ordered by. */
export function identityBytes(identity: Identity): Buffer {
  const [kind, id] = identity;
  const kindLength = Buffer.byteLength(kind);
  if (typeof id === 'number') {
    const bytes = Buffer.allocUnsafe(kindLength + 10);
    bytes.write(kind, 0);
    bytes[kindLength] = 0;
    bytes[kindLength + 1] = NUMBER;
    bytes.writeBigUInt64BE(BigInt(id) + OFFSET, kindLength + 2);
    return bytes;
  }
  const bytes = Buffer.allocUnsafe(kindLength + 2 + Buffer.byteLength(id));
  bytes.write(kind, 0);
  bytes[kindLength] = 0;
  bytes[kindLength + 1] = STRING;
  bytes.write(id, kindLength + 2);
  return bytes;
}

/** The identity stored as `bytes` (see {@link identityBytes}). */
export function identityOf(bytes: Uint8Array): Identity {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = buffer.indexOf(0);
  const kind = buffer.toString('utf8', 0, end);
  if (buffer[end + 1] === NUMBER) return [kind, Number(buffer.readBigUInt64BE(end + 2) - OFFSET)];
  return [kind, buffer.toString('utf8', end + 2)];
}

/** The range [low, high) holding every identity of `kind`. */
export function kindRange(kind: string): [Buffer, Buffer] {
  return [Buffer.concat([Buffer.from(kind), Buffer.of(0)]), Buffer.concat([Buffer.from(kind), Buffer.of(1)])];
}

/** A name (of a consumer, an idempotency key) as the bytes it is stored and ordered by: UTF-8. */
export function nameBytes(name: string): Buffer {
  return Buffer.from(name, 'utf8');
}
