/**
 * The stored form of a key: msgpack [createdAt, expiresAt | null, destroyedAt | null,
 * reason | null, wrapped | null]. A destroyed key keeps its record without `wrapped`, so it can
 * never be created again.
 */
import { KeyDestroyedError } from '../errors.ts';
import { packr } from '../model/msgpack.ts';
import type { Identity } from '../model/types.ts';

export interface KeyRecord {
  createdAt: number;
  expiresAt: number | null;
  destroyedAt: number | null;
  reason: string | null;
  wrapped: Uint8Array | null;
}

type Stored = [createdAt: number, expiresAt: number | null, destroyedAt: number | null, reason: string | null, wrapped: Uint8Array | null];

export function encodeKeyRecord(record: KeyRecord): Uint8Array {
  return packr.pack([record.createdAt, record.expiresAt, record.destroyedAt, record.reason, record.wrapped] satisfies Stored);
}

export function decodeKeyRecord(bytes: Uint8Array): KeyRecord {
  const [createdAt, expiresAt, destroyedAt, reason, wrapped] = packr.unpack(bytes) as Stored;
  return { createdAt, expiresAt, destroyedAt, reason, wrapped };
}

/** Whether the key can decrypt at `now`: not destroyed, material present, not past its expiry. */
export function isLive(record: KeyRecord, now: number): boolean {
  return record.destroyedAt === null && record.wrapped !== null && (record.expiresAt === null || record.expiresAt > now);
}

/**
 * The wrapped bytes of a key that may still encrypt at `now`.
 * @throws KeyDestroyedError when it is gone, destroyed or expired: keys are never reused.
 */
export function usableWrapped(key: Identity, record: KeyRecord | undefined, now: number): Uint8Array {
  if (record === undefined) throw new KeyDestroyedError(`key ${JSON.stringify(key)} does not exist any more`);
  if (record.destroyedAt !== null || record.wrapped === null) {
    throw new KeyDestroyedError(`key ${JSON.stringify(key)} was destroyed (${record.reason ?? 'shredded'}); keys are never reused`);
  }
  if (record.expiresAt !== null && record.expiresAt <= now) {
    throw new KeyDestroyedError(`key ${JSON.stringify(key)} expired at ${new Date(record.expiresAt).toISOString()}; keys are never reused`);
  }
  return record.wrapped;
}

/** The tombstone that replaces a key's record when it is destroyed. */
export function destroyedRecord(record: KeyRecord | undefined, now: number, reason: string): KeyRecord {
  return { createdAt: record?.createdAt ?? now, expiresAt: record?.expiresAt ?? null, destroyedAt: now, reason, wrapped: null };
}
