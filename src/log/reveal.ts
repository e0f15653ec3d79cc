/**
 * Reveal: what a reader may see of stored events. Values under a live key are decrypted, values
 * whose key is gone become the `redact` value, and raw reads show the envelopes. Right before a
 * page of events is decoded, the keys it needs are checked against the store (their records, or
 * only the newest effect where this process read a record after that very effect), so a shred
 * that has returned is seen by the next page of every reader.
 */
import { openValue, openValueUnderAll, toEnvelope } from '../crypto/envelope.ts';
import { decodeKeyRecord, isLive, type KeyRecord } from '../crypto/key-record.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import type { Storage } from '../storage/engine.ts';
import type { KeyCache } from './key-cache.ts';
import type { Schemas } from '../model/schemas.ts';
import { decodeBody, encryptionKeysOf, extrasOf, toLogEvent, type Body, type Revealer } from './record.ts';
import { upcast } from './upcast.ts';

/**
 * How stored events are shown: `raw` as stored (envelopes, the stored schema version); `plain`
 * as a reader sees them (decrypted or redacted, upcast).
 */
export type Reveal = 'raw' | 'plain';

/**
 * The keys a revealed event was decrypted with, for what is derived from it (sealed states),
 * and their identity keys: none for an event that held no plaintext under a key.
 */
export interface DecryptedWith {
  readonly keys: readonly Identity[];
  readonly ids: readonly string[];
}

/** Notes in `keys` (by identity key) the keys of `decrypted`: those a value derived from the event came under. */
export function noteDecrypted(keys: Map<string, Identity>, decrypted: DecryptedWith): void {
  for (let k = 0; k < decrypted.keys.length; k++) keys.set(decrypted.ids[k] as string, decrypted.keys[k] as Identity);
}

/** What an event that held no plaintext under a key (or was redacted, or shown raw) was decrypted with. */
export const NOT_DECRYPTED: DecryptedWith = Object.freeze({ keys: Object.freeze([]), ids: Object.freeze([]) });

/**
 * Events as revealed, and beside each (at the same index) what it was decrypted with: carried
 * next to the events, not on them, since the events go to users as they are.
 */
export interface Revealed {
  readonly events: LogEvent[];
  readonly decrypted: readonly DecryptedWith[];
}

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

const revealRaw: Revealer = (envelope, _path, _seq, _aggregate, keys) => toEnvelope(envelope, keys);

/**
 * The material of each of `keys` that can decrypt now (undefined for one that is gone, destroyed
 * or past its expiry), as the store holds them now: a shred that has returned is seen here. The
 * store's newest effect is read first; a record this process read after that same effect is
 * still the stored one (a destroy is written with its effect), so only the others are read.
 * @throws MissingMasterKeyError without a master key, when one of them is live.
 */
export function liveMaterials(context: RevealContext, keys: readonly Identity[]): Promise<Map<string, Uint8Array | undefined>> {
  return materialsOf(context, new Map(keys.map((key) => [identityKey(key), key])));
}

/**
 * {@link liveMaterials} of keys given by identity key; the result is by identity key too. One
 * engine read, of the keys not held from a read after the newest effect this log has seen, with
 * the newest effect now; only if an effect came since does a second read take the others.
 */
async function materialsOf(context: RevealContext, keys: ReadonlyMap<string, Identity>): Promise<Map<string, Uint8Array | undefined>> {
  const material = new Map<string, Uint8Array | undefined>();
  const now = context.now();
  let pending = [...keys];
  let assumed = context.keys.lastEffect;
  while (pending.length > 0) {
    const held: [string, Identity, { record: KeyRecord; material: Uint8Array }][] = [];
    const unread: [string, Identity][] = [];
    for (const [id, key] of pending) {
      const known = assumed === undefined ? undefined : context.keys.unchangedSince(id, assumed);
      if (known === undefined) unread.push([id, key]);
      else held.push([id, key, known]);
    }
    const { records, lastEffect } = await context.storage.keyRecords(unread.map(([, key]) => key));
    context.keys.noteLastEffect(lastEffect);
    unread.forEach(([id, key], i) => {
      const stored = records[i];
      const record = stored === undefined ? undefined : decodeKeyRecord(stored);
      if (record === undefined || !isLive(record, now)) return gone(context, id, key, material);
      material.set(id, context.keys.material(key, record.wrapped as Uint8Array));
      context.keys.saw(key, stored as Uint8Array, record, lastEffect);
    });
    // An effect since the one assumed: a held record may be destroyed now, so read those too.
    if (lastEffect !== assumed) {
      pending = held.map(([id, key]) => [id, key]);
      assumed = undefined;
      continue;
    }
    for (const [id, key, known] of held) {
      if (isLive(known.record, now)) material.set(id, known.material);
      else gone(context, id, key, material);
    }
    pending = [];
  }
  return material;
}

/** Notes a key that cannot decrypt now, and wipes what this process held of it. */
function gone(context: RevealContext, id: string, key: Identity, material: Map<string, Uint8Array | undefined>): void {
  context.keys.forget(key);
  material.set(id, undefined);
}

/**
 * Whether a key an event was decrypted with (`decrypted`, as revealed here) is gone now, so that
 * its plaintext must go nowhere: the event is to be read again.
 */
export async function keyGoneSince(context: RevealContext, decrypted: DecryptedWith): Promise<boolean> {
  const { keys } = decrypted;
  return keys.length > 0 && [...(await liveMaterials(context, keys)).values()].some((material) => material === undefined);
}

/**
 * The revealer of bodies under `keys` (their `materials` as they are now): decrypting where
 * every key lives, redacting where one is gone (naming it to `redact`).
 */
function revealerFor(context: RevealContext, keys: readonly Identity[], materials: readonly (Uint8Array | undefined)[], gone: number): Revealer {
  if (gone >= 0) return (_, path, _seq, aggregate) => context.redact({ aggregate, path, key: keys[gone] as Identity });
  if (keys.length === 1) return (envelope, path, seq, aggregate) => openValue(envelope, materials[0] as Uint8Array, keys[0] as Identity, aggregate, path, seq);
  return (envelope, path, seq, aggregate) => openValueUnderAll(envelope, materials as Uint8Array[], keys, aggregate, path, seq);
}

/** How the bodies under one set of keys are revealed within a page. */
interface KeySet {
  reveal: Revealer;
  /** The keys as the first body of the page under them names them, where every one lives (so the events are decrypted, not redacted). */
  decrypted: DecryptedWith;
}

/** The event a reader sees of `body`: revealed, then lifted to the current schema version. */
function readerEvent(context: RevealContext, seq: number, body: Body, reveal: Revealer): LogEvent {
  const event = toLogEvent(seq, body, reveal);
  if (!('action' in event)) return event;
  const version = extrasOf(body).v ?? 1;
  return version === 1 && context.schemas.size === 0 ? event : upcast(event, version, context.schemas);
}

/** `count` events that were not decrypted. */
function noneDecrypted(count: number): DecryptedWith[] {
  return new Array<DecryptedWith>(count).fill(NOT_DECRYPTED);
}

/**
 * Turns decoded bodies into events, shown as `reveal` says. Each body's keys are named once
 * (by identity key, or those of a key list joined), and the bodies under the same keys share one
 * revealer, built after the page's keys are checked.
 */
export async function revealBodies(context: RevealContext, entries: readonly { seq: number; body: Body }[], reveal: Reveal): Promise<Revealed> {
  if (reveal === 'raw') return { events: entries.map(({ seq, body }) => toLogEvent(seq, body, revealRaw)), decrypted: noneDecrypted(entries.length) };
  const sets: (string | undefined)[] = new Array(entries.length);
  const keys = new Map<string, Identity>();
  const named = new Map<string, DecryptedWith>();
  for (let i = 0; i < entries.length; i++) {
    const used = encryptionKeysOf((entries[i] as { body: Body }).body);
    if (used === undefined) continue;
    const ids = used.map(identityKey);
    // Three NULs never occur within an identity key, so the joined form names one list only.
    const set = ids.length === 1 ? (ids[0] as string) : ids.join('\u0000\u0000\u0000');
    sets[i] = set;
    if (named.has(set)) continue;
    named.set(set, { keys: used, ids });
    used.forEach((key, k) => keys.set(ids[k] as string, key));
  }
  // Without keys no body holds an envelope: a binary value there is corruption, which
  // toLogEvent reports before it would call the revealer.
  if (keys.size === 0) return { events: entries.map(({ seq, body }) => readerEvent(context, seq, body, revealRaw)), decrypted: noneDecrypted(entries.length) };
  const material = await materialsOf(context, keys);
  const revealers = new Map<string, KeySet>();
  for (const [set, used] of named) {
    const materials = used.ids.map((id) => material.get(id));
    const gone = materials.indexOf(undefined);
    revealers.set(set, { reveal: revealerFor(context, used.keys, materials, gone), decrypted: gone < 0 ? used : NOT_DECRYPTED });
  }
  const decrypted = noneDecrypted(entries.length);
  const events = entries.map(({ seq, body }, i) => {
    const set = sets[i];
    if (set === undefined) return readerEvent(context, seq, body, revealRaw);
    const { reveal: revealer, decrypted: used } = revealers.get(set) as KeySet;
    decrypted[i] = used;
    return readerEvent(context, seq, body, revealer);
  });
  return { events, decrypted };
}

/** Decodes stored records and reveals them. @throws CorruptLogError for a record that is not an event. */
export function revealRecords(context: RevealContext, records: readonly { seq: number; record: Uint8Array }[], reveal: Reveal): Promise<Revealed> {
  return revealBodies(context, records.map(({ seq, record }) => ({ seq, body: decodeBody(record, seq) })), reveal);
}
