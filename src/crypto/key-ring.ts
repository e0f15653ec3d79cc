/**
 * The key ring: per-subject data keys, wrapped under a key-encryption key (KEK) derived from the
 * master key, destroyed together with the effect that announces it.
 *
 * Key record, in the `keys` database under [kind, id]:
 *   msgpack [createdAt, expiresAt | null, destroyedAt | null, reason | null, wrapped | null]
 * where wrapped = nonce(24) || XChaCha20-Poly1305(KEK, key) with the identity as associated data.
 * A destroyed key keeps its record without `wrapped`, so it can never be created again.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { add } from 'date-fns/add';
import type { Duration } from 'date-fns';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CorruptLogError, InvalidArgumentError, KeyDestroyedError, MissingMasterKeyError, WrongMasterKeyError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { EffectEvent, Identity } from '../model/types.ts';
import { identityKey, isPlainObject, prepareIdentity, readArgument, type PreparedEffect } from '../model/validate.ts';
import { encodeEvents, writeUnchecked } from '../log/append.ts';
import { packr } from '../log/record.ts';
import { EMPTY, type Store } from '../log/store.ts';
import type { KeyInfo, Keys } from './keys.ts';

const textEncoder = new TextEncoder();
const KEY_BYTES = 32;
const NONCE_BYTES = 24;
const DURATION_UNITS = new Set(['years', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds']);
/** setTimeout's largest delay; later expiries are re-checked when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How often an autoExpire process looks for keys other processes created. */
const AUTO_EXPIRE_POLL_MS = 60_000;

type KeyRecord = [createdAt: number, expiresAt: number | null, destroyedAt: number | null, reason: string | null, wrapped: Uint8Array | null];

/**
 * Accepts 32 bytes or 64 hex characters.
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

/**
 * Checks a date-fns Duration: only its units, finite non-negative numbers, not all zero.
 * @throws InvalidArgumentError naming the option.
 */
export function parseDuration(value: unknown, name: string): Duration {
  if (!isPlainObject(value)) throw new InvalidArgumentError(`${name}: expected a date-fns Duration such as { days: 30 }, got ${describe(value)}`);
  let total = 0;
  for (const [unit, amount] of Object.entries(value)) {
    if (!DURATION_UNITS.has(unit)) throw new InvalidArgumentError(`${name}.${unit}: expected one of ${[...DURATION_UNITS].join(', ')}, got an unknown unit`);
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      throw new InvalidArgumentError(`${name}.${unit}: expected a finite number >= 0, got ${describe(amount)}`);
    }
    total += amount;
  }
  if (total === 0) throw new InvalidArgumentError(`${name}: expected a Duration longer than zero, got ${JSON.stringify(value)}`);
  expiryAfter(Date.now(), value as Duration, name);
  return value as Duration;
}

/**
 * The instant `duration` after `now`.
 * @throws InvalidArgumentError when it falls outside what a Date can hold.
 */
export function expiryAfter(now: number, duration: Duration, name: string): number {
  const expiresAt = add(now, duration).getTime();
  if (!Number.isFinite(expiresAt)) throw new InvalidArgumentError(`${name}: expected a Duration that ends within the range of a Date, got ${JSON.stringify(duration)}`);
  return expiresAt;
}

function derive(masterKey: Uint8Array, salt: Uint8Array, purpose: string): Uint8Array {
  // HKDF (RFC 5869) with a per-store random salt: one master key yields unrelated keys per store.
  return hkdf(sha256, masterKey, salt, textEncoder.encode(`coherence/${purpose}/v1`), KEY_BYTES);
}

/**
 * Derives the KEK and checks the master key against the store's check value, creating both on
 * first use. @throws WrongMasterKeyError when the check value differs.
 */
export function unlockStore(store: Store, masterKey: Uint8Array): Uint8Array {
  const { salt, check } = store.meta.transactionSync(() => {
    let salt = store.meta.get('kek-salt');
    let check = store.meta.get('kek-check');
    if (salt === undefined || check === undefined) {
      salt = randomBytes(KEY_BYTES);
      check = Buffer.from(derive(masterKey, salt, 'check'));
      store.meta.putSync('kek-salt', salt);
      store.meta.putSync('kek-check', check);
    }
    return { salt, check };
  });
  if (!timingSafeEqual(derive(masterKey, salt, 'check'), check)) throw new WrongMasterKeyError();
  return derive(masterKey, salt, 'kek');
}

function keyAd(key: Identity): Uint8Array {
  return textEncoder.encode(`coherence/key/v1\u0000${JSON.stringify(key)}`);
}

function toInfo(key: Identity, record: KeyRecord): KeyInfo {
  const [createdAt, expiresAt, destroyedAt, reason] = record;
  const info: KeyInfo = { key, createdAt: new Date(createdAt) };
  if (expiresAt !== null) info.expiresAt = new Date(expiresAt);
  if (destroyedAt !== null) info.destroyedAt = new Date(destroyedAt);
  if (reason !== null) info.reason = reason;
  return info;
}

/** The keys of one append, checked and stored inside its write transaction. */
export interface BatchKeys {
  /** Key material by identity key, to encrypt with. */
  keys: ReadonlyMap<string, { key: Uint8Array }>;
  /**
   * Inside the transaction: whether every key is as it was when prepared (false when another
   * process created a drawn key meanwhile: the batch must be encrypted again).
   * @throws KeyDestroyedError when one was destroyed meanwhile.
   */
  isCurrent(): boolean;
  /** Inside the transaction, once the batch is written: stores the drawn keys. */
  commit(): void;
  /** Whether `commit` stores new keys (autoExpire must then look at their expiry). */
  created: boolean;
}

/** Settings the ring takes from `openLog`. */
export interface KeyRingSettings {
  kek: Uint8Array | undefined;
  keyTtl: Duration | undefined;
  clock: () => number;
  maxEventBytes: number;
  /** Called after the ring wrote effects to the log. */
  onWrite: () => void;
}

/** The key ring of one open log. */
export class KeyRing implements Keys {
  readonly #store: () => Store;
  readonly #settings: KeyRingSettings;
  /** Unwrapped keys by identity, with the wrapped bytes they came from; always re-checked. */
  readonly #cache = new Map<string, { wrapped: Buffer; key: Uint8Array }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(store: () => Store, settings: KeyRingSettings) {
    this.#store = store;
    this.#settings = settings;
  }

  #kek(): Uint8Array {
    if (this.#settings.kek === undefined) throw new MissingMasterKeyError('encryption needs the log to be opened with a masterKey');
    return this.#settings.kek;
  }

  #read(key: Identity): KeyRecord | undefined {
    const stored = this.#store().keys.get([key[0], key[1]]);
    return stored === undefined ? undefined : (packr.unpack(stored) as KeyRecord);
  }

  #isLive(record: KeyRecord, now: number): boolean {
    return record[2] === null && record[4] !== null && (record[1] === null || record[1] > now);
  }

  #unwrap(key: Identity, wrapped: Uint8Array): Uint8Array {
    const id = identityKey(key);
    const cached = this.#cache.get(id);
    if (cached !== undefined && cached.wrapped.equals(wrapped)) return cached.key;
    let material: Uint8Array;
    try {
      material = xchacha20poly1305(this.#kek(), wrapped.subarray(0, NONCE_BYTES), keyAd(key)).decrypt(wrapped.subarray(NONCE_BYTES));
    } catch (cause) {
      throw new CorruptLogError(`key ${JSON.stringify(key)}: the wrapped key fails authentication`, { cause });
    }
    this.#cache.set(id, { wrapped: Buffer.from(wrapped), key: material });
    return material;
  }

  #forget(key: Identity): void {
    const id = identityKey(key);
    this.#cache.get(id)?.key.fill(0);
    this.#cache.delete(id);
  }

  /**
   * The key to decrypt with, read from the store on every call (never trusted from the cache
   * alone), or undefined when it is destroyed or past its expiry: the caller then redacts.
   */
  keyForDecryption(key: Identity): Uint8Array | undefined {
    const record = this.#read(key);
    if (record === undefined || !this.#isLive(record, this.#settings.clock())) {
      this.#forget(key);
      return undefined;
    }
    this.#kek();
    return this.#unwrap(key, record[4] as Uint8Array);
  }

  /**
   * The keys to encrypt a batch with. A missing key is drawn (with `keyTtl`) but not stored:
   * the append stores it with `commit`, in its own transaction, only if it writes the batch, so
   * a dry run or a conflict leaves no key behind.
   * @throws KeyDestroyedError when one is destroyed or expired.
   */
  prepareBatchKeys(keys: readonly Identity[]): BatchKeys {
    const kek = this.#kek();
    const now = this.#settings.clock();
    const expiresAt = this.#settings.keyTtl === undefined ? null : expiryAfter(now, this.#settings.keyTtl, 'options.keyTtl');
    const prepared = keys.map((id) => {
      const record = this.#read(id);
      if (record !== undefined) {
        const wrapped = this.assertUsable(id, record);
        return { id, key: this.#unwrap(id, wrapped), wrapped, fresh: false };
      }
      const key = Uint8Array.from(randomBytes(KEY_BYTES));
      return { id, key, wrapped: this.#wrap(kek, id, key), fresh: true };
    });
    return {
      keys: new Map(prepared.map((p) => [identityKey(p.id), p])),
      created: prepared.some((p) => p.fresh),
      isCurrent: () =>
        prepared.every(({ id, wrapped, fresh }) => {
          if (!fresh) return this.assertUsable(id).equals(wrapped);
          const record = this.#read(id);
          if (record !== undefined && record[2] !== null) this.assertUsable(id, record);
          return record === undefined;
        }),
      commit: () => {
        for (const { id, wrapped, fresh } of prepared) if (fresh) this.#put(id, [now, expiresAt, null, null, wrapped]);
      },
    };
  }

  /**
   * Checks, inside the append transaction, that a key is still live; returns its wrapped bytes.
   * @throws KeyDestroyedError when it is destroyed or expired.
   */
  assertUsable(key: Identity, record: KeyRecord | undefined = this.#read(key)): Buffer {
    if (record === undefined) throw new KeyDestroyedError(`key ${JSON.stringify(key)} does not exist any more`);
    if (record[2] !== null || record[4] === null) throw new KeyDestroyedError(`key ${JSON.stringify(key)} was destroyed (${record[3] ?? 'shredded'}); keys are never reused`);
    if (record[1] !== null && record[1] <= this.#settings.clock()) throw new KeyDestroyedError(`key ${JSON.stringify(key)} expired at ${new Date(record[1]).toISOString()}; keys are never reused`);
    return Buffer.from(record[4]);
  }

  #wrap(kek: Uint8Array, key: Identity, material: Uint8Array): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    return Buffer.concat([nonce, xchacha20poly1305(kek, nonce, keyAd(key)).encrypt(material)]);
  }

  #wrapNew(kek: Uint8Array, key: Identity): Buffer {
    const material = randomBytes(KEY_BYTES);
    const wrapped = this.#wrap(kek, key, material);
    material.fill(0);
    return wrapped;
  }

  #put(key: Identity, record: KeyRecord): void {
    const store = this.#store();
    store.keys.put([key[0], key[1]], packr.pack(record));
    if (record[1] !== null && record[2] === null) store.keyExpiry.put([record[1], key[0], key[1]], EMPTY);
  }

  async create(key: Identity, options: { expiresAt?: Date; ttl?: Duration } = {}): Promise<KeyInfo> {
    options = readArgument(options, 'options');
    const id = prepareIdentity(key, 'key');
    if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { expiresAt?, ttl? }, got ${describe(options)}`);
    for (const name of Object.keys(options)) {
      if (name !== 'expiresAt' && name !== 'ttl') throw new InvalidArgumentError(`options.${name}: expected expiresAt or ttl, got an unknown option`);
    }
    if (options.expiresAt !== undefined && options.ttl !== undefined) throw new InvalidArgumentError('options: expected expiresAt or ttl, got both');
    const now = this.#settings.clock();
    let expiresAt: number | null = null;
    if (options.expiresAt !== undefined) {
      if (!(options.expiresAt instanceof Date) || Number.isNaN(options.expiresAt.getTime())) {
        throw new InvalidArgumentError(`options.expiresAt: expected a valid Date, got ${describe(options.expiresAt)}`);
      }
      expiresAt = options.expiresAt.getTime();
    } else if (options.ttl !== undefined) {
      expiresAt = expiryAfter(now, parseDuration(options.ttl, 'options.ttl'), 'options.ttl');
    } else if (this.#settings.keyTtl !== undefined) {
      expiresAt = expiryAfter(now, this.#settings.keyTtl, 'options.keyTtl');
    }
    if (expiresAt !== null && expiresAt <= now) {
      throw new InvalidArgumentError(`options.expiresAt: expected a time after now (${new Date(now).toISOString()}), got ${new Date(expiresAt).toISOString()}`);
    }
    const kek = this.#kek();
    const record = await this.#store().root.transaction(() => {
      const existing = this.#read(id);
      if (existing !== undefined) {
        if (existing[2] !== null) throw new KeyDestroyedError(`key ${JSON.stringify(id)} was destroyed (${existing[3] ?? 'shredded'}); keys are never reused`);
        throw new InvalidArgumentError(`key: expected a new key, got ${JSON.stringify(id)} which exists already`);
      }
      const created: KeyRecord = [now, expiresAt, null, null, this.#wrapNew(kek, id)];
      this.#put(id, created);
      return created;
    });
    this.reschedule();
    return toInfo(id, record);
  }

  async get(key: Identity): Promise<KeyInfo | undefined> {
    const id = prepareIdentity(key, 'key');
    this.#store().root.resetReadTxn();
    const record = this.#read(id);
    return record === undefined ? undefined : toInfo(id, record);
  }

  async *list(options: { destroyed?: boolean } = {}): AsyncIterable<KeyInfo> {
    options = readArgument(options, 'options');
    if (!isPlainObject(options) || (options.destroyed !== undefined && typeof options.destroyed !== 'boolean')) {
      throw new InvalidArgumentError(`options.destroyed: expected a boolean, got ${describe(isPlainObject(options) ? options.destroyed : options)}`);
    }
    this.#store().root.resetReadTxn();
    for (const { key, value } of this.#store().keys.getRange()) {
      const record = packr.unpack(value) as KeyRecord;
      if (options.destroyed === undefined || options.destroyed === (record[2] !== null)) {
        const [kind, id] = key as [string, string | number];
        yield toInfo([kind, id], record);
      }
    }
  }

  async shred(key: Identity, options: { reason?: string; source?: string } = {}): Promise<EffectEvent> {
    options = readArgument(options, 'options');
    const id = prepareIdentity(key, 'key');
    if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { reason?, source? }, got ${describe(options)}`);
    for (const name of ['reason', 'source'] as const) {
      const value = options[name];
      if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
        throw new InvalidArgumentError(`options.${name}: expected a non-empty string, got ${describe(value)}`);
      }
    }
    const [effect] = await this.#destroy([id], options.reason ?? 'shredded', options.source ?? 'keystore', true);
    return effect as EffectEvent;
  }

  async expire(now?: Date): Promise<EffectEvent[]> {
    now = readArgument(now, 'now');
    if (now !== undefined && (!(now instanceof Date) || Number.isNaN(now.getTime()))) {
      throw new InvalidArgumentError(`now: expected a valid Date, got ${describe(now)}`);
    }
    const at = now?.getTime() ?? this.#settings.clock();
    const store = this.#store();
    store.root.resetReadTxn();
    const due: Identity[] = [];
    for (const key of store.keyExpiry.getKeys({ end: [at, '\uffff'] })) {
      const [expiresAt, kind, id] = key as [number, string, string | number];
      if (expiresAt <= at) due.push([kind, id]);
    }
    if (due.length === 0) return [];
    const effects = await this.#destroy(due, 'key-expired', 'keystore', false, at);
    this.reschedule();
    return effects;
  }

  /**
   * Destroys keys and appends their effects in one transaction: the key is gone if and only if
   * its effect is in the log. `strict` refuses an already destroyed key; expire() skips it.
   */
  async #destroy(keys: readonly Identity[], reason: string, source: string, strict: boolean, dueAt?: number): Promise<EffectEvent[]> {
    const store = this.#store();
    const now = this.#settings.clock();
    const effects = await store.root.transaction(() => {
      const destroyed: Identity[] = [];
      for (const key of keys) {
        const record = this.#read(key);
        if (record !== undefined && record[2] !== null) {
          if (strict) throw new KeyDestroyedError(`key ${JSON.stringify(key)} was destroyed already (${record[3] ?? 'shredded'})`);
          continue;
        }
        // expire(): only what is still due now that we hold the write lock.
        if (dueAt !== undefined && (record === undefined || record[1] === null || record[1] > dueAt)) continue;
        if (record !== undefined && record[1] !== null) store.keyExpiry.remove([record[1], key[0], key[1]]);
        // Overwrite with zeros of the same length first: LMDB then writes in place on this
        // transaction's copy of the page, so the shorter record that follows leaves zeros, not
        // wrapped key bytes, in the page's unused space (which compaction copies verbatim).
        const stored = store.keys.get([key[0], key[1]]);
        if (stored !== undefined) store.keys.put([key[0], key[1]], Buffer.alloc(stored.length));
        store.keys.put([key[0], key[1]], packr.pack([record?.[0] ?? now, record?.[1] ?? null, now, reason, null] satisfies KeyRecord));
        destroyed.push(key);
      }
      if (destroyed.length === 0) return [];
      const prepared: PreparedEffect[] = destroyed.map((trigger) => ({ type: 'effect', timestamp: now, source, reason, trigger }));
      return writeUnchecked(store, encodeEvents(prepared, this.#settings.maxEventBytes)) as EffectEvent[];
    });
    for (const key of keys) this.#forget(key);
    if (effects.length > 0) this.#settings.onWrite();
    return effects;
  }

  /** With autoExpire: arms one unref'd timer for the next expiry (or the next poll). Call it after a commit that created keys. */
  reschedule(): void {
    if (this.#timer === undefined) return;
    try {
      this.#arm();
    } catch {
      // The log closed meanwhile: nothing left to expire here.
    }
  }

  /** Starts shredding keys at their expiry by timer, without keeping the process alive. */
  startAutoExpire(): void {
    this.#timer = setTimeout(() => {}, 0);
    this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#store().root.resetReadTxn();
    let next: number | undefined;
    for (const key of this.#store().keyExpiry.getKeys({ limit: 1 })) next = (key as [number])[0];
    const delay = Math.min(AUTO_EXPIRE_POLL_MS, next === undefined ? AUTO_EXPIRE_POLL_MS : Math.max(0, next - this.#settings.clock()), MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      this.expire().then(() => this.reschedule(), () => this.reschedule());
    }, delay);
    this.#timer.unref();
  }

  /** Stops the timer and wipes the unwrapped keys from memory. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const { key } of this.#cache.values()) key.fill(0);
    this.#cache.clear();
  }
}
