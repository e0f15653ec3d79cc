/**
 * Values derived from events and kept at rest (projection states; snapshots and process states
 * use the same), sealed under the keys of the encrypted values they were folded from, so that
 * none outlives its keys (SPEC §6, "Read models at rest are sealed").
 *
 * A record is msgpack: the value itself when it was folded from plaintext only (as 0.1.0 stored
 * every state: no cost without encryption), or `[SEALED, keys, salt, ciphertext]` when keys
 * contributed, where SEALED is a binary (no JSON value holds one, so the two cannot be
 * confused). The record names its keys, never their material. A record sealed while one of its
 * keys was already gone holds no ciphertext at all: it can never be opened.
 *
 * Sealing takes the keys' material from what this process decrypted the folded values with
 * (the key cache), not from the store again: a value is only in a state because it was
 * decrypted a moment before. If another process destroyed a key meanwhile, the state is sealed
 * under a key nobody can obtain any more, which is as unreadable as intended; if this process
 * saw it destroyed, the record is kept without ciphertext.
 */
import { drawSalts, openSealed, sealBytes } from '../crypto/seal.ts';
import { packr } from '../model/msgpack.ts';
import type { Identity } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import { liveMaterials, type RevealContext } from './reveal.ts';

/** The first element of a sealed record: a binary, which no JSON state can be; its byte is the version. */
const SEALED = Uint8Array.of(1);
const textEncoder = new TextEncoder();

type SealedRecord = [marker: Uint8Array, keys: Identity[], salt: Uint8Array | null, ciphertext: Uint8Array | null];

function isSealed(value: unknown): value is SealedRecord {
  return Array.isArray(value) && value[0] instanceof Uint8Array;
}

/** A value to keep, with the keys whose plaintext was folded into it. */
export interface Derived {
  aggregate: Identity;
  value: unknown;
  keys: readonly Identity[];
}

function sortedKeys(keys: readonly Identity[]): Identity[] {
  return [...keys].sort((a, b) => (identityKey(a) < identityKey(b) ? -1 : identityKey(a) > identityKey(b) ? 1 : 0));
}

function associatedData(owner: string, aggregate: Identity, keys: readonly Identity[]): Uint8Array {
  return textEncoder.encode(`coherence/sealed/v1\u0000${JSON.stringify([owner, aggregate, keys])}`);
}

/** The records to store for `items` of `owner` (a projection's name), sealed where keys contributed. */
export function encodeDerived(context: RevealContext, owner: string, items: readonly Derived[]): Uint8Array[] {
  if (!context.sealStates || items.every((item) => item.keys.length === 0)) return items.map((item) => packr.pack(item.value));
  const salts = drawSalts(items.length);
  return items.map((item, i) => {
    if (item.keys.length === 0) return packr.pack(item.value);
    const keys = sortedKeys(item.keys);
    const materials = keys.map((key) => context.keys.held(key));
    if (materials.some((m) => m === undefined)) {
      // A key the value came from is gone already: keep nothing that could ever be opened.
      return packr.pack([SEALED, keys, null, null] satisfies SealedRecord);
    }
    const salt = salts[i] as Buffer;
    const ciphertext = sealBytes(packr.pack(item.value), materials as Uint8Array[], salt, associatedData(owner, item.aggregate, keys));
    return packr.pack([SEALED, keys, salt, ciphertext] satisfies SealedRecord);
  });
}

/** What a stored record holds: the value and its keys, or `undefined` when a key it needs is gone. */
export type Opened = { value: unknown; keys: Identity[] } | undefined;

/**
 * Opens stored records of `owner`, reading the keys they name from the store now.
 * @throws CorruptLogError when a sealed record fails authentication (it is never taken for gone).
 */
export async function decodeDerived(context: RevealContext, owner: string, items: readonly { aggregate: Identity; bytes: Uint8Array }[]): Promise<Opened[]> {
  const unpacked = items.map(({ bytes }) => packr.unpack(bytes) as unknown);
  const sealed = unpacked.map((value) => (isSealed(value) ? value : undefined));
  const needed = new Map<string, Identity>();
  for (const record of sealed) for (const key of record?.[1] ?? []) needed.set(identityKey(key), key);
  const material = needed.size === 0 ? new Map<string, Uint8Array | undefined>() : await liveMaterials(context, [...needed.values()]);
  return items.map(({ aggregate }, i) => {
    const record = sealed[i];
    if (record === undefined) return { value: unpacked[i], keys: [] };
    const [, keys, salt, ciphertext] = record;
    const materials = keys.map((key) => material.get(identityKey(key)));
    if (salt === null || ciphertext === null || materials.some((m) => m === undefined)) return undefined;
    return { value: openSealed(ciphertext, materials as Uint8Array[], salt, associatedData(owner, aggregate, keys), `the state of ${JSON.stringify(aggregate)} in "${owner}"`), keys };
  });
}
