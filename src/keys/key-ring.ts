/**
 * The key ring over the engine: per-subject data keys, wrapped under the store's KEK, destroyed
 * together with the effect that announces it. `log.keys` is a facade over it ({@link keysFacade}).
 */
import { decodeKeyRecord, destroyedRecord, encodeKeyRecord, type KeyRecord } from '../crypto/key-record.ts';
import { newDataKey, wrapKey } from '../crypto/key-wrap.ts';
import { InvalidArgumentError, KeyDestroyedError } from '../errors.ts';
import { appendEffects } from '../log/append.ts';
import type { LogCore } from '../log/log-core.ts';
import { expiryAfter, parseDuration, type Duration } from '../model/duration.ts';
import { describe } from '../model/json-pointer.ts';
import type { EffectEvent, Identity } from '../model/types.ts';
import { isPlainObject, prepareIdentity, readArgument, type PreparedEffect } from '../model/validate.ts';
import type { KeyRow } from '../storage/engine.ts';
import type { KeyInfo, Keys } from './keys.ts';

/** setTimeout's largest delay; later expiries are re-checked when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How often an autoExpire process looks for keys other processes created. */
const AUTO_EXPIRE_POLL_MS = 60_000;

function toInfo(key: Identity, record: KeyRecord): KeyInfo {
  const info: KeyInfo = { key, createdAt: new Date(record.createdAt) };
  if (record.expiresAt !== null) info.expiresAt = new Date(record.expiresAt);
  if (record.destroyedAt !== null) info.destroyedAt = new Date(record.destroyedAt);
  if (record.reason !== null) info.reason = record.reason;
  return info;
}

function destroyedMessage(key: Identity, record: KeyRecord, already = false): string {
  return `key ${JSON.stringify(key)} was destroyed${already ? ' already' : ''} (${record.reason ?? 'shredded'})${already ? '' : '; keys are never reused'}`;
}

/** The key ring of one open log. */
export class KeyRing {
  readonly #core: LogCore;
  #timer: NodeJS.Timeout | undefined;
  #stopWatching: (() => void) | undefined;

  constructor(core: LogCore) {
    this.#core = core;
  }

  async create(key: Identity, options: { expiresAt?: Date; ttl?: Duration } = {}): Promise<KeyInfo> {
    options = readArgument(options, 'options');
    const id = prepareIdentity(key, 'key');
    if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { expiresAt?, ttl? }, got ${describe(options)}`);
    for (const name of Object.keys(options)) {
      if (name !== 'expiresAt' && name !== 'ttl') throw new InvalidArgumentError(`options.${name}: expected expiresAt or ttl, got an unknown option`);
    }
    if (options.expiresAt !== undefined && options.ttl !== undefined) throw new InvalidArgumentError('options: expected expiresAt or ttl, got both');
    const now = this.#core.now();
    let expiresAt: number | null = null;
    if (options.expiresAt !== undefined) {
      if (!(options.expiresAt instanceof Date) || Number.isNaN(options.expiresAt.getTime())) {
        throw new InvalidArgumentError(`options.expiresAt: expected a valid Date, got ${describe(options.expiresAt)}`);
      }
      expiresAt = options.expiresAt.getTime();
    } else if (options.ttl !== undefined) {
      expiresAt = expiryAfter(now, parseDuration(options.ttl, 'options.ttl'), 'options.ttl');
    } else if (this.#core.settings.keyTtl !== undefined) {
      expiresAt = expiryAfter(now, this.#core.settings.keyTtl, 'options.keyTtl');
    }
    if (expiresAt !== null && expiresAt <= now) {
      throw new InvalidArgumentError(`options.expiresAt: expected a time after now (${new Date(now).toISOString()}), got ${new Date(expiresAt).toISOString()}`);
    }
    const kek = this.#core.keys.kek();
    this.#core.assertOpen();
    const material = newDataKey();
    const created: KeyRecord = { createdAt: now, expiresAt, destroyedAt: null, reason: null, wrapped: wrapKey(kek, id, material) };
    material.fill(0);
    await this.#core.storage.write({ base: 0, aggregates: [], conflictRecords: false, triggers: [], keys: [id] }, (view) => {
      const existing = view.key(id);
      if (existing !== undefined) {
        const record = decodeKeyRecord(existing);
        if (record.destroyedAt !== null) throw new KeyDestroyedError(destroyedMessage(id, record));
        throw new InvalidArgumentError(`key: expected a new key, got ${JSON.stringify(id)} which exists already`);
      }
      return { result: undefined, keys: [{ key: id, record: encodeKeyRecord(created), expiresAt, indexedExpiresAt: null }] };
    });
    this.reschedule();
    return toInfo(id, created);
  }

  async get(key: Identity): Promise<KeyInfo | undefined> {
    const id = prepareIdentity(key, 'key');
    this.#core.assertOpen();
    const [stored] = (await this.#core.storage.keyRecords([id])).records;
    return stored === undefined ? undefined : toInfo(id, decodeKeyRecord(stored));
  }

  async *list(options: { destroyed?: boolean } = {}): AsyncIterable<KeyInfo> {
    options = readArgument(options, 'options');
    if (!isPlainObject(options) || (options.destroyed !== undefined && typeof options.destroyed !== 'boolean')) {
      throw new InvalidArgumentError(`options.destroyed: expected a boolean, got ${describe(isPlainObject(options) ? options.destroyed : options)}`);
    }
    this.#core.assertOpen();
    for await (const { key, record: stored } of this.#core.storage.allKeys()) {
      const record = decodeKeyRecord(stored);
      if (options.destroyed === undefined || options.destroyed === (record.destroyedAt !== null)) yield toInfo(key, record);
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
    const [effect] = await this.#destroy([id], options.reason ?? 'shredded', options.source ?? 'keystore', undefined);
    return effect as EffectEvent;
  }

  async expire(now?: Date): Promise<EffectEvent[]> {
    now = readArgument(now, 'now');
    if (now !== undefined && (!(now instanceof Date) || Number.isNaN(now.getTime()))) {
      throw new InvalidArgumentError(`now: expected a valid Date, got ${describe(now)}`);
    }
    const at = now?.getTime() ?? this.#core.now();
    this.#core.assertOpen();
    const due = (await this.#core.storage.expiringKeys(at)).map(({ key }) => key);
    if (due.length === 0) return [];
    const effects = await this.#destroy(due, 'key-expired', 'keystore', at);
    this.reschedule();
    return effects;
  }

  /**
   * Destroys keys and appends their effects in one transaction: the key is gone if and only if
   * its effect is in the log. A shred (`dueAt` undefined) refuses an already destroyed key;
   * expire() skips it, and any key no longer due now that the write holds the lock.
   */
  async #destroy(keys: readonly Identity[], reason: string, source: string, dueAt: number | undefined): Promise<EffectEvent[]> {
    const now = this.#core.now();
    const effects = await appendEffects(
      this.#core,
      (view) => {
        const destroyed: PreparedEffect[] = [];
        const rows: KeyRow[] = [];
        for (const key of keys) {
          const stored = view.key(key);
          const record = stored === undefined ? undefined : decodeKeyRecord(stored);
          if (record !== undefined && record.destroyedAt !== null) {
            if (dueAt === undefined) throw new KeyDestroyedError(destroyedMessage(key, record, true));
            continue;
          }
          if (dueAt !== undefined && (record === undefined || record.expiresAt === null || record.expiresAt > dueAt)) continue;
          rows.push({ key, record: encodeKeyRecord(destroyedRecord(record, now, reason)), expiresAt: null, indexedExpiresAt: record?.expiresAt ?? null });
          destroyed.push({ type: 'effect', timestamp: now, source, reason, trigger: key });
        }
        return { effects: destroyed, keys: rows };
      },
      { keys, triggers: keys },
    );
    for (const key of keys) this.#core.keys.forget(key);
    return effects as EffectEvent[];
  }

  /** With autoExpire: arms one unref'd timer for the next expiry (or the next poll). */
  reschedule(): void {
    if (this.#timer === undefined) return;
    this.#arm().catch(() => {
      // The log closed meanwhile: nothing left to expire here.
    });
  }

  /** Starts shredding keys at their expiry by timer, without keeping the process alive. */
  startAutoExpire(): void {
    this.#timer = setTimeout(() => {}, 0);
    this.#stopWatching = this.#core.onWrite((notice) => {
      if (notice.keysCreated) this.reschedule();
    });
    this.reschedule();
  }

  async #arm(): Promise<void> {
    this.#core.assertOpen();
    const [next] = await this.#core.storage.expiringKeys(undefined);
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    const delay = Math.min(AUTO_EXPIRE_POLL_MS, next === undefined ? AUTO_EXPIRE_POLL_MS : Math.max(0, next.expiresAt - this.#core.now()), MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      this.expire().then(() => this.reschedule(), () => this.reschedule());
    }, delay);
    this.#timer.unref();
  }

  /** Stops the timer. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopWatching?.();
  }
}

/** `log.keys`: the documented members of the ring, and nothing else reachable. */
class KeysFacade implements Keys {
  readonly #ring: KeyRing;

  constructor(ring: KeyRing) {
    this.#ring = ring;
  }

  create(key: Identity, options?: { expiresAt?: Date; ttl?: Duration }): Promise<KeyInfo> {
    return this.#ring.create(key, options);
  }

  get(key: Identity): Promise<KeyInfo | undefined> {
    return this.#ring.get(key);
  }

  list(options?: { destroyed?: boolean }): AsyncIterable<KeyInfo> {
    return this.#ring.list(options);
  }

  shred(key: Identity, options?: { reason?: string; source?: string }): Promise<EffectEvent> {
    return this.#ring.shred(key, options);
  }

  expire(now?: Date): Promise<EffectEvent[]> {
    return this.#ring.expire(now);
  }
}

/** The public face of a key ring. */
export function keysFacade(ring: KeyRing): Keys {
  return new KeysFacade(ring);
}
