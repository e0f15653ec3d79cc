/**
 * The projector: folds the log into per-aggregate states, kept by the engine as a consumer
 * under the projection's name: a record `{ position, definition }` and one state per aggregate.
 *
 * Each batch is computed from reads bounded by one head without holding any lock (user code runs
 * there), then committed in one transaction that first checks the record is still the one the
 * batch started from. Two processes catching up the same projection therefore never apply an
 * event twice: the slower one finds the position moved and carries on from there.
 *
 * A state folded from encrypted values is stored sealed under their keys (log/sealed.ts): once
 * one of them is destroyed nobody can open it, and whoever meets it (a reader, or the next
 * batch) folds that aggregate again from its actions with the keys as they are now.
 */
import { InvalidArgumentError, ProjectionError } from '../errors.ts';
import { followLog, prepareFollowOptions, rethrowLater } from '../log/follow.ts';
import type { LogCore } from '../log/log-core.ts';
import { actionSeqs, aggregateMatcher, readPages } from '../log/read.ts';
import { noteDecrypted, type DecryptedWith } from '../log/reveal.ts';
import { decodeDerived, encodeDerived } from '../log/sealed.ts';
import { applyPatchAtomic } from '../model/fold.ts';
import { describe } from '../model/json-pointer.ts';
import { packr } from '../model/msgpack.ts';
import type { ActionEvent, Identity, LogEvent } from '../model/types.ts';
import { assertStorableState, identityKey, isPlainObject, prepareCallback, prepareIdentity, prepareReadOptions, prepareSeq, readArgument } from '../model/validate.ts';
import type { StateChange } from '../storage/engine.ts';
import type { CatchUpResult, Projection, ProjectionOptions } from './projection.ts';

/**
 * Where a catch-up batch ends: after `events` events, or at the end of the chunk that brings
 * the states it changed to `states`. Each changed state is written once per batch, so a batch
 * over few aggregates can run long (writing states is most of a short batch's cost), while the
 * states cap bounds what one commit writes and what the batch holds in memory, and the events
 * cap how much work a crash loses and how often `onProgress` reports.
 */
export interface BatchLimits {
  events: number;
  states: number;
}

/**
 * The limits every projection uses; tests pass smaller ones to {@link openProjection}.
 * @example
 * openProjection(core, 'counts', options, { ...CATCH_UP_LIMITS, events: 5_000 });
 */
export const CATCH_UP_LIMITS: Readonly<BatchLimits> = { events: 250_000, states: 25_000 };
/** Events folded between two reads of the states they need (one engine call per chunk). */
const CHUNK_EVENTS = 256;
/** States opened together (one read of their keys) by `entries`. */
const ENTRIES_PAGE = 256;
/** Aggregate states kept in memory between the batches of one catch-up. */
const STATE_CACHE_ENTRIES = 50_000;

interface Definition {
  from: number;
  kinds: string[] | null;
  aggregates: Identity[] | null;
}

interface Meta {
  position: number;
  definition: Definition;
}

interface Entry<State> {
  aggregate: Identity;
  state: State | undefined;
  /** The keys whose plaintext was folded into the state: it is sealed under them. */
  keys: Map<string, Identity>;
  changed: boolean;
  /** Folded again because of an effect: its old record is wiped before the new one is written. */
  refolded: boolean;
  /** The stored state could not be opened (a key it was sealed under is gone): fold it again before use. */
  stale: boolean;
}

type FollowOptions = { onError?: (error: unknown) => void; onCatchUp?: (result: CatchUpResult) => void };

type ProgressOptions = { onProgress?: (position: number, head: number) => void };

const PROJECTION_KEYS = new Set(['kinds', 'aggregates', 'from', 'init', 'apply']);

/** A projection over one log. */
export class StoredProjection<State> {
  readonly name: string;
  readonly #core: LogCore;
  readonly #definition: Definition;
  /** The definition as JSON, compared with the stored one's on every read of the record. */
  readonly #definitionJson: string;
  readonly #filter: ReturnType<typeof prepareReadOptions>;
  readonly #matches: ((aggregate: Identity) => boolean) | undefined;
  readonly #init: (aggregate: Identity) => State;
  readonly #apply: (state: State, event: ActionEvent) => State;
  /** Whether `init` or `apply` is the caller's: their states are checked before they are stored. */
  readonly #userFold: boolean;
  readonly #limits: Readonly<BatchLimits>;
  /** Serializes catch-ups and rebuilds of this object. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(name: string, options: ProjectionOptions<State>, core: LogCore, limits: Readonly<BatchLimits>) {
    options = readArgument(options, 'options');
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`name: expected a non-empty string, got ${describe(name)}`);
    if (!isPlainObject(options as unknown)) throw new InvalidArgumentError(`options: expected { kinds?, aggregates?, from?, init?, apply? }, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (!PROJECTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...PROJECTION_KEYS].join(', ')}, got an unknown option`);
    }
    for (const fn of ['init', 'apply'] as const) {
      if (options[fn] !== undefined && typeof options[fn] !== 'function') throw new InvalidArgumentError(`options.${fn}: expected a function, got ${describe(options[fn])}`);
    }
    const from = options.from === undefined ? 1 : prepareSeq(options.from, 'options.from', 1);
    this.#filter = prepareReadOptions({ from, replay: false, kinds: options.kinds, aggregates: options.aggregates });
    this.#matches = aggregateMatcher(this.#filter);
    this.name = name;
    this.#core = core;
    this.#limits = limits;
    this.#definition = {
      from,
      kinds: this.#filter.kinds === undefined ? null : [...this.#filter.kinds].sort(),
      aggregates: this.#filter.aggregates === undefined ? null : [...this.#filter.aggregates].sort((a, b) => (identityKey(a) < identityKey(b) ? -1 : 1)),
    };
    this.#definitionJson = JSON.stringify(this.#definition);
    this.#userFold = options.init !== undefined || options.apply !== undefined;
    this.#init = options.init ?? ((() => ({})) as () => State);
    this.#apply = options.apply ?? ((state, event) => applyPatchAtomic(state, event.action.patch) as State);
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * The stored record (as stored, for the commit's check) and the position it gives.
   * @throws InvalidArgumentError when it was built with another definition.
   */
  async #meta(): Promise<{ stored: Uint8Array | undefined; position: number }> {
    this.#core.assertOpen();
    const stored = await this.#core.storage.consumerMeta(this.name);
    if (stored === undefined) return { stored, position: this.#definition.from - 1 };
    const meta = packr.unpack(stored) as Meta;
    if (JSON.stringify(meta.definition) !== this.#definitionJson) {
      throw new InvalidArgumentError(
        `projection "${this.name}": expected the definition it was built with (${JSON.stringify(meta.definition)}), got ${this.#definitionJson}; call rebuild() to rebuild it with the new one`,
      );
    }
    return { stored, position: meta.position };
  }

  catchUp(options: ProgressOptions = {}): Promise<CatchUpResult> {
    const onProgress = prepareCallback<NonNullable<ProgressOptions['onProgress']>>(options, 'onProgress');
    return this.#core.track(this.#exclusive(() => this.#catchUp(onProgress)));
  }

  async #catchUp(onProgress?: (position: number, head: number) => void): Promise<CatchUpResult> {
    this.#core.assertOpen();
    const head = await this.#core.storage.head();
    let meta = await this.#meta();
    const result: CatchUpResult = { from: meta.position + 1, to: meta.position, actions: 0, replayed: 0 };
    // States written by one batch, kept for the next so hot aggregates are not read back from
    // the engine every batch; dropped whenever anyone else may have moved the projection.
    const cache = new Map<string, Entry<State>>();
    while (meta.position < head) {
      this.#core.assertOpen(); // close() has begun: stop between batches.
      const batch = await this.#computeBatch(meta.position, head, cache);
      const next = packr.pack({ position: batch.to, definition: this.#definition } satisfies Meta);
      const committed = await this.#core.storage.commitStates(this.name, meta.stored, next, this.#changes(cache));
      if (committed) {
        result.actions += batch.actions;
        result.replayed += batch.replayed;
      }
      meta = await this.#meta();
      if (!committed || meta.position !== batch.to || cache.size > STATE_CACHE_ENTRIES) cache.clear();
      else for (const entry of cache.values()) entry.changed = entry.refolded = false;
      onProgress?.(Math.min(meta.position, head), head);
    }
    result.to = Math.max(meta.position, result.to);
    return result;
  }

  /**
   * Adds the entries of `missing` (aggregates by identity key, none in `entries`), reading their
   * states in one engine call. A state whose keys are gone stays stale until first used, where
   * an effect may fold it again anyway.
   */
  async #load(entries: Map<string, Entry<State>>, missing: ReadonlyMap<string, Identity>): Promise<void> {
    if (missing.size === 0) return;
    const wanted = [...missing.values()];
    const states = await this.#open(wanted, await this.#core.storage.states(this.name, wanted));
    let i = 0;
    for (const key of missing.keys()) entries.set(key, states[i++] as Entry<State>);
  }

  /**
   * The entries of stored states, opened where their keys live. Where one is gone the entry is
   * `stale`: whoever uses it first folds it again (`#refold`) from the aggregate's actions, with
   * the keys as they are now.
   */
  async #open(aggregates: readonly Identity[], stored: readonly (Uint8Array | undefined)[]): Promise<Entry<State>[]> {
    const present = aggregates.flatMap((aggregate, i) => (stored[i] === undefined ? [] : [{ aggregate, bytes: stored[i] as Uint8Array }]));
    const opened = await decodeDerived(this.#core, this.name, present);
    let next = 0;
    const entries: Entry<State>[] = [];
    for (const [i, aggregate] of aggregates.entries()) {
      const entry: Entry<State> = { aggregate, state: undefined, keys: new Map(), changed: false, refolded: false, stale: false };
      entries.push(entry);
      if (stored[i] === undefined) continue;
      const found = opened[next++];
      if (found !== undefined) {
        entry.state = found.value as State;
        entry.keys = new Map(found.keys.map((k) => [identityKey(k), k]));
      } else {
        entry.stale = true;
      }
    }
    return entries;
  }

  /** Folds an aggregate again from its first action up to `upTo`, decrypting with the keys as they are now. */
  async #refold(entry: Entry<State>, upTo: number): Promise<number> {
    entry.state = undefined;
    entry.keys = new Map();
    entry.stale = false;
    const { events, decrypted } = await this.#core.events(await actionSeqs(this.#core, entry.aggregate, 1, upTo + 1));
    events.forEach((action, i) => this.#fold(entry, action as ActionEvent, decrypted[i] as DecryptedWith));
    return events.length;
  }

  /** Folds the events after `position` (at most one batch of them, see {@link BatchLimits}) into `entries`. */
  async #computeBatch(position: number, head: number, entries: Map<string, Entry<State>>) {
    let to = head;
    let actions = 0;
    let replayed = 0;
    let changed = 0;
    const change = (target: Entry<State>): void => {
      if (!target.changed) changed++;
      target.changed = true;
    };
    let chunk: LogEvent[] = [];
    let chunkDecrypted: DecryptedWith[] = [];
    const fold = async (): Promise<void> => {
      const effects = chunk.filter((event) => !('action' in event)).map((event) => event.seq);
      const affected = new Map<number, readonly Identity[]>();
      if (effects.length > 0) {
        (await this.#core.storage.affected(effects)).forEach((list, i) => affected.set(effects[i] as number, (list ?? []).filter((a) => this.#matches?.(a) ?? true)));
      }
      // Each action's identity key, worked out once; the aggregates without an entry yet.
      const keys: (string | undefined)[] = new Array(chunk.length);
      const missing = new Map<string, Identity>();
      const need = (aggregate: Identity): string => {
        const key = identityKey(aggregate);
        if (!entries.has(key)) missing.set(key, aggregate);
        return key;
      };
      chunk.forEach((event, i) => {
        if ('action' in event) keys[i] = need(event.action.aggregate);
        else for (const aggregate of affected.get(event.seq) ?? []) need(aggregate);
      });
      await this.#load(entries, missing);
      for (const [i, event] of chunk.entries()) {
        if ('action' in event) {
          const target = entries.get(keys[i] as string) as Entry<State>;
          if (target.stale) {
            await this.#refold(target, position);
            target.refolded = true;
          }
          this.#fold(target, event, chunkDecrypted[i] as DecryptedWith);
          change(target);
          actions++;
          continue;
        }
        for (const aggregate of affected.get(event.seq) ?? []) {
          const target = entries.get(identityKey(aggregate)) as Entry<State>;
          replayed += await this.#refold(target, event.seq - 1);
          change(target);
          target.refolded = true;
        }
      }
      chunk = [];
      chunkDecrypted = [];
    };
    let seen = 0;
    pages: for await (const { events, decrypted } of readPages(this.#core, { ...this.#filter, from: position + 1 }, head)) {
      for (let i = 0; i < events.length; i++) {
        const event = events[i] as LogEvent;
        chunk.push(event);
        chunkDecrypted.push(decrypted[i] as DecryptedWith);
        const full = ++seen >= this.#limits.events;
        if (chunk.length < CHUNK_EVENTS && !full) continue;
        await fold();
        if (full || changed >= this.#limits.states) {
          to = event.seq;
          break pages;
        }
      }
    }
    await fold();
    return { to, actions, replayed };
  }

  /** Folds one action into an entry, noting the keys its plaintext came under (`decrypted`). */
  #fold(entry: Entry<State>, event: ActionEvent, decrypted: DecryptedWith): void {
    try {
      entry.state = this.#apply(entry.state === undefined ? this.#init(event.action.aggregate) : entry.state, event);
    } catch (cause) {
      throw new ProjectionError(this.name, event.seq, cause);
    }
    // Only user code can return what the store cannot hold: the default fold applies validated
    // JSON patches to `{}`, and checking it would cost a walk of the whole state per event.
    if (this.#userFold) assertStorableState(entry.state, this.name, event.seq);
    noteDecrypted(entry.keys, decrypted);
  }

  /** The changed states of a batch, encoded (sealed where keys contributed). */
  #changes(entries: Map<string, Entry<State>>): StateChange[] {
    const changed = [...entries.values()].filter((entry) => entry.changed);
    const kept = changed.filter((entry) => entry.state !== undefined);
    const encoded = encodeDerived(this.#core, this.name, kept.map(({ aggregate, state, keys }) => ({ aggregate, value: state, keys: [...keys.values()] })));
    const values = new Map(kept.map((entry, i) => [entry, encoded[i]]));
    // A refolded state may have held plaintext a shred just took away: the engine overwrites it.
    return changed.map((entry) => ({ aggregate: entry.aggregate, value: values.get(entry), wipe: entry.refolded }));
  }

  /** The position the stored states are at, without checking the definition (readers only read). */
  async #storedPosition(): Promise<number> {
    const stored = await this.#core.storage.consumerMeta(this.name);
    return stored === undefined ? this.#definition.from - 1 : (packr.unpack(stored) as Meta).position;
  }

  async get(aggregate: Identity): Promise<State | undefined> {
    const checked = prepareIdentity(aggregate, 'aggregate');
    this.#core.assertOpen();
    const stored = await this.#core.storage.states(this.name, [checked]);
    if (stored[0] === undefined) return undefined;
    const [entry] = (await this.#open([checked], stored)) as [Entry<State>];
    // The stored position is read only for a state that must be folded again, up to it.
    if (entry.stale) await this.#refold(entry, await this.#storedPosition());
    return entry.state;
  }

  async *entries(options: { kind?: string } = {}): AsyncIterable<[Identity, State]> {
    options = readArgument(options, 'options');
    if (!isPlainObject(options) || (options.kind !== undefined && (typeof options.kind !== 'string' || options.kind.length === 0))) {
      throw new InvalidArgumentError(`options.kind: expected a non-empty string, got ${describe(isPlainObject(options) ? options.kind : options)}`);
    }
    this.#core.assertOpen();
    const position = await this.#storedPosition();
    let page: { aggregate: Identity; value: Uint8Array }[] = [];
    const flush = async () => {
      const entries = await this.#open(page.map((p) => p.aggregate), page.map((p) => p.value));
      for (const entry of entries) if (entry.stale) await this.#refold(entry, position);
      page = [];
      return entries.map((entry): [Identity, State] => [entry.aggregate, entry.state as State]);
    };
    for await (const state of this.#core.storage.allStates(this.name, options.kind)) {
      page.push(state);
      if (page.length === ENTRIES_PAGE) yield* await flush();
    }
    if (page.length > 0) yield* await flush();
  }

  async position(): Promise<number> {
    return (await this.#meta()).position;
  }

  rebuild(options: ProgressOptions = {}): Promise<CatchUpResult> {
    const onProgress = prepareCallback<NonNullable<ProgressOptions['onProgress']>>(options, 'onProgress');
    return this.#core.track(this.#exclusive(async () => {
      this.#core.assertOpen();
      await this.#core.storage.dropConsumer(this.name);
      return this.#catchUp(onProgress);
    }));
  }

  follow(options: FollowOptions = {}): () => Promise<void> {
    options = prepareFollowOptions<FollowOptions>(options, ['onError', 'onCatchUp']);
    this.#core.assertOpen();
    const onCatchUp = options.onCatchUp;
    const onResult = onCatchUp === undefined ? undefined : (result: CatchUpResult) => {
      if (result.to >= result.from) onCatchUp(result);
    };
    return followLog(this.#core, () => this.catchUp(), onResult, options.onError ?? rethrowLater).stop;
  }
}

/** `log.projection(...)`: the documented members of a projection, and nothing else reachable. */
class ProjectionFacade<State> implements Projection<State> {
  readonly #projection: StoredProjection<State>;

  constructor(projection: StoredProjection<State>) {
    this.#projection = projection;
  }

  get name(): string {
    return this.#projection.name;
  }

  catchUp(options?: ProgressOptions): Promise<CatchUpResult> {
    return this.#projection.catchUp(options);
  }

  get(aggregate: Identity): Promise<State | undefined> {
    return this.#projection.get(aggregate);
  }

  entries(options?: { kind?: string }): AsyncIterable<[Identity, State]> {
    return this.#projection.entries(options);
  }

  position(): Promise<number> {
    return this.#projection.position();
  }

  rebuild(options?: ProgressOptions): Promise<CatchUpResult> {
    return this.#projection.rebuild(options);
  }

  follow(options?: FollowOptions): () => Promise<void> {
    return this.#projection.follow(options);
  }
}

/**
 * A projection over the open log, behind its public face.
 * @throws InvalidArgumentError for a bad name or options.
 */
export function openProjection<State>(core: LogCore, name: string, options: ProjectionOptions<State>, limits: Readonly<BatchLimits> = CATCH_UP_LIMITS): Projection<State> {
  return new ProjectionFacade(new StoredProjection(name, options, core, limits));
}
