/**
 * Child: reads key records straight from the `keys` database through its own LMDB handle, and
 * unwraps them with the key-encryption key derived from the master key, so that the test (whose
 * own handle stays untouched) learns the exact bytes to look for on disk: each stored record, its
 * wrapped key and the raw 32-byte key. Arguments: path, master key (hex), identities as JSON.
 *
 * Layout (src/crypto/key-record.ts and key-wrap.ts): msgpack [createdAt, expiresAt, destroyedAt, reason, wrapped],
 * wrapped = nonce(24) || XChaCha20-Poly1305(KEK, key) with `coherence/key/v1\0` + JSON(identity)
 * as associated data.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { open } from 'lmdb';
import { deriveKek, parseMasterKey } from '../../src/crypto/key-wrap.ts';
import { packr } from '../../src/model/msgpack.ts';
import type { Identity } from '../../src/index.ts';

const [path, masterKey, keysJson] = process.argv.slice(2) as [string, string, string];
const identities = JSON.parse(keysJson) as Identity[];

// The records through a plain lmdb handle: the bytes exactly as stored.
const root = open({ path, maxDbs: 16 });
const keys = root.openDB<Buffer, [string, string | number]>({ name: 'keys', encoding: 'binary' });
const records = identities.map((key) => {
  const stored = keys.get([key[0], key[1]]);
  if (stored === undefined) throw new Error(`no record for ${JSON.stringify(key)}`);
  const record = Buffer.from(stored);
  const [, , destroyedAt, , wrapped] = packr.unpack(record) as [number, number | null, number | null, string | null, Uint8Array | null];
  if (wrapped === null || destroyedAt !== null) throw new Error(`${JSON.stringify(key)} is destroyed already`);
  return { key, record, wrapped };
});
await root.close();

// The KEK as the store derives it (from its salt), then each raw key.
const metaRoot = open({ path, maxDbs: 16 });
const salt = metaRoot.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' }).get('kek-salt');
await metaRoot.close();
if (salt === undefined) throw new Error('the store has no key-encryption salt');
const kek = deriveKek(parseMasterKey(masterKey), salt);
const result = records.map(({ key, record, wrapped }) => {
  const ad = new TextEncoder().encode(`coherence/key/v1\u0000${JSON.stringify(key)}`);
  const raw = xchacha20poly1305(kek, wrapped.subarray(0, 24), ad).decrypt(wrapped.subarray(24));
  return { key, record: record.toString('hex'), wrapped: Buffer.from(wrapped).toString('hex'), raw: Buffer.from(raw).toString('hex') };
});
console.log(`result ${JSON.stringify(result)}`);
