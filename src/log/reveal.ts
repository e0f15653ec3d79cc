/**
 * Reveal: what a reader may see of stored events. Values under a live key are decrypted, values
 * whose key is gone become the `redact` value, and raw reads show the envelopes. The records of
 * the keys a page of events needs are read from the store once per page, right before it is
 * decoded, so a shred that has returned is seen by the next page of every reader.
 */
import { openValue, toEnvelope } from '../crypto/envelope.ts';
import { decodeKeyRecord, isLive } from '../crypto/key-record.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import type { Storage } from '../storage/engine.ts';
import type { KeyCache } from './key-cache.ts';
import { decodeBody, toLogEvent, type Body, type Revealer } from './record.ts';

/** What readers see in place of a value whose key is gone. */
export type Redact = (context: { aggregate: Identity; path: string; key: Identity }) => unknown;

/** What revealing needs from the open log. */
export interface RevealContext {
  readonly storage: Storage;
  readonly keys: KeyCache;
  readonly redact: Redact;
  now(): number;
}

const revealRaw: Revealer = (_seq, _aggregate, key) => (envelope) => toEnvelope(envelope, key);

/** The distinct encryption keys of a set of bodies. */
function keysOf(bodies: readonly Body[]): Identity[] {
  const keys = new Map<string, Identity>();
  for (const body of bodies) {
    if (body[0] === 0 && body[8] !== undefined) keys.set(identityKey(body[8]), body[8]);
  }
  return [...keys.values()];
}

/**
 * The revealer for bodies that need `keys`: decrypting where the key lives (now), redacting where
 * it is gone. Without a master key, values under a live key throw MissingMasterKeyError.
 */
async function revealerFor(context: RevealContext, keys: readonly Identity[]): Promise<Revealer> {
  const records = await context.storage.keyRecords(keys);
  const now = context.now();
  const material = new Map<string, Uint8Array | undefined>();
  keys.forEach((key, i) => {
    const stored = records[i];
    const record = stored === undefined ? undefined : decodeKeyRecord(stored);
    if (record === undefined || !isLive(record, now)) {
      context.keys.forget(key);
      material.set(identityKey(key), undefined);
    } else {
      material.set(identityKey(key), context.keys.material(key, record.wrapped as Uint8Array));
    }
  });
  return (seq, aggregate, key) => {
    const found = material.get(identityKey(key));
    if (found === undefined) return (_, path) => context.redact({ aggregate, path, key });
    return (envelope, path) => openValue(envelope, found, key, aggregate, path, seq);
  };
}

/** Turns decoded bodies into the events a reader sees. */
export async function revealBodies(context: RevealContext, entries: readonly { seq: number; body: Body }[], raw: boolean): Promise<LogEvent[]> {
  if (raw) return entries.map(({ seq, body }) => toLogEvent(seq, body, revealRaw));
  const keys = keysOf(entries.map((entry) => entry.body));
  // Without keys no body holds an envelope: a binary value there is corruption, which
  // toLogEvent reports before it would call the revealer.
  const reveal = keys.length === 0 ? revealRaw : await revealerFor(context, keys);
  return entries.map(({ seq, body }) => toLogEvent(seq, body, reveal));
}

/** Decodes stored records and reveals them. @throws CorruptLogError for a record that is not an event. */
export function revealRecords(context: RevealContext, records: readonly { seq: number; record: Uint8Array }[], raw: boolean): Promise<LogEvent[]> {
  return revealBodies(context, records.map(({ seq, record }) => ({ seq, body: decodeBody(record, seq) })), raw);
}
