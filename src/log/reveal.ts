/**
 * Reveal: what a reader may see of stored events. Values under a live key are decrypted, values
 * whose key is gone become the `redact` value, and raw reads show the envelopes. The records of
 * the keys a page of events needs are read from the store once per page, right before it is
 * decoded, so a shred that has returned is seen by the next page of every reader.
 */
import { openValue, openValueUnderAll, toEnvelope } from '../crypto/envelope.ts';
import { decodeKeyRecord, isLive } from '../crypto/key-record.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import type { Storage } from '../storage/engine.ts';
import type { KeyCache } from './key-cache.ts';
import type { Schemas } from '../model/schemas.ts';
import { decodeBody, encryptionKeysOf, extrasOf, toLogEvent, type Body, type Revealer } from './record.ts';
import { upcast } from './upcast.ts';

/** What readers see in place of a value whose key is gone. */
export type Redact = (context: { aggregate: Identity; path: string; key: Identity }) => unknown;

/** What revealing needs from the open log. */
export interface RevealContext {
  readonly storage: Storage;
  readonly keys: KeyCache;
  readonly redact: Redact;
  /** Whether derived values are sealed (see LogSettings.sealStates). */
  readonly sealStates: boolean;
  /** Schema versions and upcasters: readers see actions lifted to the current version. */
  readonly schemas: Schemas;
  now(): number;
}

const revealRaw: Revealer = (_seq, _aggregate, keys) => (envelope) => toEnvelope(envelope, keys);

/** The distinct encryption keys of a set of bodies. */
function keysOf(bodies: readonly Body[]): Identity[] {
  const keys = new Map<string, Identity>();
  for (const body of bodies) for (const key of encryptionKeysOf(body) ?? []) keys.set(identityKey(key), key);
  return [...keys.values()];
}

/**
 * The material of each of `keys` that can decrypt now (undefined for one that is gone, destroyed
 * or past its expiry), as the store holds them now: a shred that has returned is seen here. The
 * store's newest effect is read first; a record this process read after that same effect is
 * still the stored one (a destroy is written with its effect), so only the others are read.
 * @throws MissingMasterKeyError without a master key, when one of them is live.
 */
export async function liveMaterials(context: RevealContext, keys: readonly Identity[]): Promise<Map<string, Uint8Array | undefined>> {
  const lastEffect = await context.storage.lastEffect();
  const material = new Map<string, Uint8Array | undefined>();
  const unread: Identity[] = [];
  const now = context.now();
  for (const key of keys) {
    const held = context.keys.unchangedSince(key, lastEffect);
    if (held === undefined) unread.push(key);
    else if (isLive(held.record, now)) material.set(identityKey(key), held.material);
    else gone(context, key, material);
  }
  if (unread.length === 0) return material;
  const records = await context.storage.keyRecords(unread);
  unread.forEach((key, i) => {
    const stored = records[i];
    const record = stored === undefined ? undefined : decodeKeyRecord(stored);
    if (record === undefined || !isLive(record, now)) return gone(context, key, material);
    material.set(identityKey(key), context.keys.material(key, record.wrapped as Uint8Array));
    context.keys.saw(key, stored as Uint8Array, record, lastEffect);
  });
  return material;
}

function gone(context: RevealContext, key: Identity, material: Map<string, Uint8Array | undefined>): void {
  context.keys.forget(key);
  material.set(identityKey(key), undefined);
}

/** The keys each revealed event was decrypted with, for what is folded from it (sealed states). */
const decryptedWith = new WeakMap<LogEvent, readonly Identity[]>();

/** The keys `event` (as revealed here) was decrypted with; none when it held no plaintext under a key. */
export function keysOfEvent(event: LogEvent): readonly Identity[] {
  return decryptedWith.get(event) ?? NO_KEYS;
}

const NO_KEYS: readonly Identity[] = Object.freeze([]);

/**
 * The revealer for bodies that need `keys`: decrypting where the keys live (now), redacting
 * where one is gone (naming the first missing key to `redact`).
 */
function revealerFor(context: RevealContext, material: Map<string, Uint8Array | undefined>): Revealer {
  return (seq, aggregate, keys) => {
    const materials = keys.map((key) => material.get(identityKey(key)));
    const gone = keys.find((_, i) => materials[i] === undefined);
    if (gone !== undefined) return (_, path) => context.redact({ aggregate, path, key: gone });
    if (keys.length === 1) return (envelope, path) => openValue(envelope, materials[0] as Uint8Array, keys[0] as Identity, aggregate, path, seq);
    return (envelope, path) => openValueUnderAll(envelope, materials as Uint8Array[], keys, aggregate, path, seq);
  };
}

/** The event a reader sees of `body`: revealed, then lifted to the current schema version. */
function readerEvent(context: RevealContext, seq: number, body: Body, reveal: Revealer): LogEvent {
  const event = toLogEvent(seq, body, reveal);
  if (!('action' in event)) return event;
  const version = extrasOf(body).v ?? 1;
  return version === 1 && context.schemas.size === 0 ? event : upcast(event, version, context.schemas);
}

/**
 * Turns decoded bodies into the events a reader sees (decrypted or redacted, upcast), or with
 * `raw` as stored (envelopes, the stored schema version).
 */
export async function revealBodies(context: RevealContext, entries: readonly { seq: number; body: Body }[], raw: boolean): Promise<LogEvent[]> {
  if (raw) return entries.map(({ seq, body }) => toLogEvent(seq, body, revealRaw));
  const keys = keysOf(entries.map((entry) => entry.body));
  // Without keys no body holds an envelope: a binary value there is corruption, which
  // toLogEvent reports before it would call the revealer.
  if (keys.length === 0) return entries.map(({ seq, body }) => readerEvent(context, seq, body, revealRaw));
  const material = await liveMaterials(context, keys);
  const reveal = revealerFor(context, material);
  return entries.map(({ seq, body }) => {
    const event = readerEvent(context, seq, body, reveal);
    const used = encryptionKeysOf(body);
    if (used !== undefined && used.every((key) => material.get(identityKey(key)) !== undefined)) decryptedWith.set(event, used);
    return event;
  });
}

/** Decodes stored records and reveals them. @throws CorruptLogError for a record that is not an event. */
export function revealRecords(context: RevealContext, records: readonly { seq: number; record: Uint8Array }[], raw: boolean): Promise<LogEvent[]> {
  return revealBodies(context, records.map(({ seq, record }) => ({ seq, body: decodeBody(record, seq) })), raw);
}
