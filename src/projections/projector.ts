/**
 * The projector: folds the log into per-aggregate states stored in the `projections` database.
 *
 * Layout, under the projection's name:
 *   [name, 0]            -> msgpack { position, definition }
 *   [name, 1, kind, id]  -> msgpack state
 *
 * Each batch is computed from one read snapshot without holding the write lock (user code runs
 * there), then written in one transaction that first checks the position is still the one the
 * batch started from. Two processes catching up the same projection therefore never apply an
 * event twice: the slower one finds the position moved and carries on from there.
 */
import { InvalidArgumentError, ProjectionError } from '../errors.ts';
import { applyPatchAtomic } from '../model/fold.ts';
import { describe } from '../model/json-pointer.ts';
import type { ActionEvent, Identity } from '../model/types.ts';
import { assertStorableState, identityKey, isPlainObject, prepareCallback, prepareIdentity, prepareReadOptions, prepareSeq, readArgument } from '../model/validate.ts';
import { affectedBy, aggregateMatcher, loadEvent, readEvents, type BodyDecoder } from '../log/read.ts';
import { packr } from '../log/record.ts';
import { indexedSeqs, lastSeq, type Store } from '../log/store.ts';
import type { CatchUpResult, Projection, ProjectionOptions } from './projection.ts';

/** Events per batch: bounds memory and how long one write transaction holds the lock. */
const BATCH_EVENTS = 5_000;
/** Aggregate states kept in memory between the batches of one catch-up. */
const STATE_CACHE_ENTRIES = 50_000;
/** How often `follow` looks at the head for appends from other processes. */
const FOLLOW_POLL_MS = 50;
const POSITION = 0;
const STATE = 1;

/** What a projection needs from the log. */
export interface ProjectionContext {
  /** The open store, or LogClosedError. */
  store(): Store;
  /** Waits out a compaction, checks the log is open and moves to the latest snapshot. */
  ready(): Promise<void>;
  /** The log's decoder: decrypts where keys live, redacts where they are gone. */
  decode: BodyDecoder;
  /** Calls `listener` after every write of this process; returns the unsubscribe function. */
  onWrite(listener: () => void): () => void;
  /** Lets `close()` wait for `work` before closing the store. */
  track<T>(work: Promise<T>): Promise<T>;
  /** Calls `stop` when the log closes; returns the function that cancels this. */
  onClose(stop: () => Promise<void>): () => void;
}

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
  changed: boolean;
  /** Folded again because of an effect: its old record is wiped before the new one is written. */
  refolded: boolean;
}

type FollowOptions = { onError?: (error: unknown) => void; onCatchUp?: (result: CatchUpResult) => void };

type ProgressOptions = { onProgress?: (position: number, head: number) => void };

function sameDefinition(a: Definition, b: Definition): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const PROJECTION_KEYS = new Set(['kinds', 'aggregates', 'from', 'init', 'apply']);

/** A projection over one log. */
export class StoredProjection<State> implements Projection<State> {
  readonly name: string;
  readonly #context: ProjectionContext;
  readonly #definition: Definition;
  readonly #filter: ReturnType<typeof prepareReadOptions>;
  readonly #matches: ((aggregate: Identity) => boolean) | undefined;
  readonly #init: (aggregate: Identity) => State;
  readonly #apply: (state: State, event: ActionEvent) => State;
  /** Whether `init` or `apply` is the caller's: their states are checked before they are stored. */
  readonly #userFold: boolean;
  /** Serializes catch-ups and rebuilds of this object. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(name: string, options: ProjectionOptions<State>, context: ProjectionContext) {
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
    this.#context = context;
    this.#definition = {
      from,
      kinds: this.#filter.kinds === undefined ? null : [...this.#filter.kinds].sort(),
      aggregates: this.#filter.aggregates === undefined ? null : [...this.#filter.aggregates].sort((a, b) => (identityKey(a) < identityKey(b) ? -1 : 1)),
    };
    this.#userFold = options.init !== undefined || options.apply !== undefined;
    this.#init = options.init ?? ((() => ({})) as () => State);
    this.#apply = options.apply ?? ((state, event) => applyPatchAtomic(state, event.action.patch) as State);
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }

  #readMeta(store: Store): Meta | undefined {
    const stored = store.projections.get([this.name, POSITION]);
    return stored === undefined ? undefined : (packr.unpack(stored) as Meta);
  }

  #position(store: Store): number {
    const meta = this.#readMeta(store);
    if (meta !== undefined && !sameDefinition(meta.definition, this.#definition)) {
      throw new InvalidArgumentError(
        `projection "${this.name}": expected the definition it was built with (${JSON.stringify(meta.definition)}), got ${JSON.stringify(this.#definition)}; call rebuild() to rebuild it with the new one`,
      );
    }
    return meta?.position ?? this.#definition.from - 1;
  }

  catchUp(options: ProgressOptions = {}): Promise<CatchUpResult> {
    const onProgress = prepareCallback<NonNullable<ProgressOptions['onProgress']>>(options, 'onProgress');
    return this.#context.track(this.#exclusive(() => this.#catchUp(onProgress)));
  }

  async #catchUp(onProgress?: (position: number, head: number) => void): Promise<CatchUpResult> {
    await this.#context.ready();
    const store = this.#context.store();
    const head = lastSeq(store);
    let position = this.#position(store);
    const result: CatchUpResult = { from: position + 1, to: position, actions: 0, replayed: 0 };
    // States written by one batch, kept for the next so hot aggregates are not read back from
    // LMDB every batch; dropped whenever anyone else may have moved the projection.
    const cache = new Map<string, Entry<State>>();
    while (position < head) {
      this.#context.store(); // LogClosedError once close() has begun: stop between batches.
      const batch = this.#computeBatch(store, position, head, cache);
      const committed = await store.root.transaction(() => {
        if (this.#position(store) !== position) return false;
        this.#write(store, batch.entries, batch.to);
        return true;
      });
      if (committed) {
        result.actions += batch.actions;
        result.replayed += batch.replayed;
      }
      store.root.resetReadTxn();
      position = this.#position(store);
      if (!committed || position !== batch.to || cache.size > STATE_CACHE_ENTRIES) cache.clear();
      else for (const entry of cache.values()) entry.changed = entry.refolded = false;
      onProgress?.(Math.min(position, head), head);
    }
    result.to = Math.max(position, result.to);
    return result;
  }

  /** Folds the events after `position` (at most one batch of them) in memory. */
  #computeBatch(store: Store, position: number, head: number, entries: Map<string, Entry<State>>) {
    const entry = (aggregate: Identity): Entry<State> => {
      const key = identityKey(aggregate);
      let found = entries.get(key);
      if (found === undefined) {
        const stored = store.projections.get([this.name, STATE, aggregate[0], aggregate[1]]);
        found = { aggregate, state: stored === undefined ? undefined : (packr.unpack(stored) as State), changed: false, refolded: false };
        entries.set(key, found);
      }
      return found;
    };
    let to = head;
    let actions = 0;
    let replayed = 0;
    let seen = 0;
    for (const event of readEvents(store, { ...this.#filter, from: position + 1 }, this.#context.decode)) {
      if (event.seq > head) break;
      if ('action' in event) {
        const target = entry(event.action.aggregate);
        target.state = this.#fold(target.state, event);
        target.changed = true;
        actions++;
      } else {
        for (const aggregate of affectedBy(store, event.seq)) {
          if (this.#matches !== undefined && !this.#matches(aggregate)) continue;
          const target = entry(aggregate);
          target.state = undefined;
          for (const seq of indexedSeqs(store.byAggregate, aggregate, 1, event.seq)) {
            target.state = this.#fold(target.state, loadEvent(store, seq, this.#context.decode) as ActionEvent);
            replayed++;
          }
          target.changed = true;
          target.refolded = true;
        }
      }
      if (++seen >= BATCH_EVENTS) {
        to = event.seq;
        break;
      }
    }
    return { entries, to, actions, replayed };
  }

  #fold(state: State | undefined, event: ActionEvent): State {
    let folded: State;
    try {
      folded = this.#apply(state === undefined ? this.#init(event.action.aggregate) : state, event);
    } catch (cause) {
      throw new ProjectionError(this.name, event.seq, cause);
    }
    // Only user code can return what the store cannot hold: the default fold applies validated
    // JSON patches to `{}`, and checking it would cost a walk of the whole state per event.
    if (this.#userFold) assertStorableState(folded, this.name, event.seq);
    return folded;
  }

  #write(store: Store, entries: Map<string, Entry<State>>, to: number): void {
    for (const { aggregate, state, changed, refolded } of entries.values()) {
      if (!changed) continue;
      const key = [this.name, STATE, aggregate[0], aggregate[1]];
      if (refolded) {
        // Zeros of the same length first: LMDB overwrites in place on this transaction's page,
        // so the old state (perhaps with plaintext a shred just took away) is not left behind
        // in the page's unused space when the new record is written.
        const old = store.projections.get(key);
        if (old !== undefined) store.projections.put(key, Buffer.alloc(old.length));
      }
      if (state === undefined) store.projections.remove(key);
      else store.projections.put(key, packr.pack(state));
    }
    store.projections.put([this.name, POSITION], packr.pack({ position: to, definition: this.#definition } satisfies Meta));
  }

  async get(aggregate: Identity): Promise<State | undefined> {
    const checked = prepareIdentity(aggregate, 'aggregate');
    await this.#context.ready();
    const stored = this.#context.store().projections.get([this.name, STATE, checked[0], checked[1]]);
    return stored === undefined ? undefined : (packr.unpack(stored) as State);
  }

  async *entries(options: { kind?: string } = {}): AsyncIterable<[Identity, State]> {
    options = readArgument(options, 'options');
    if (!isPlainObject(options) || (options.kind !== undefined && (typeof options.kind !== 'string' || options.kind.length === 0))) {
      throw new InvalidArgumentError(`options.kind: expected a non-empty string, got ${describe(isPlainObject(options) ? options.kind : options)}`);
    }
    await this.#context.ready();
    const start = options.kind === undefined ? [this.name, STATE] : [this.name, STATE, options.kind];
    for (const { key, value } of this.#context.store().projections.getRange({ start })) {
      const [name, type, kind, id] = key as [string, number, string, string | number];
      if (name !== this.name || type !== STATE || (options.kind !== undefined && kind !== options.kind)) return;
      yield [[kind, id], packr.unpack(value) as State];
    }
  }

  async position(): Promise<number> {
    await this.#context.ready();
    return this.#position(this.#context.store());
  }

  rebuild(options: ProgressOptions = {}): Promise<CatchUpResult> {
    const onProgress = prepareCallback<NonNullable<ProgressOptions['onProgress']>>(options, 'onProgress');
    return this.#context.track(this.#exclusive(async () => {
      await this.#context.ready();
      const store = this.#context.store();
      await store.root.transaction(() => {
        for (const key of store.projections.getKeys({ start: [this.name] })) {
          if ((key as unknown[])[0] !== this.name) break;
          store.projections.remove(key);
        }
      });
      return this.#catchUp(onProgress);
    }));
  }

  follow(options: FollowOptions = {}): () => Promise<void> {
    options = readArgument(options, 'options');
    if (!isPlainObject(options as unknown)) throw new InvalidArgumentError(`options: expected { onError?, onCatchUp? }, got ${describe(options)}`);
    for (const name of ['onError', 'onCatchUp'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') throw new InvalidArgumentError(`options.${name}: expected a function, got ${describe(options[name])}`);
    }
    const onCatchUp = options.onCatchUp;
    const onError = options.onError ?? ((error: unknown) => queueMicrotask(() => { throw error; }));
    let stopped = false;
    let running: Promise<void> | undefined;
    let again = false;
    /** The head the last catch-up started at: the poll runs one only when the head moves past it. */
    let seen = -1;
    const run = (): void => {
      if (stopped) return;
      if (running !== undefined) {
        again = true;
        return;
      }
      try {
        seen = lastSeq(this.#context.store());
      } catch (error) {
        onError(error);
        return;
      }
      running = this.catchUp().then((result) => {
        if (onCatchUp !== undefined && result.to >= result.from) onCatchUp(result);
      }).catch(onError).finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
    };
    const unsubscribe = this.#context.onWrite(run);
    // Other processes' appends: watch the head (one O(log n) lookup), never re-read the log.
    const poll = setInterval(() => {
      if (stopped || running !== undefined) return;
      try {
        const store = this.#context.store();
        store.root.resetReadTxn();
        if (lastSeq(store) > seen) run();
      } catch (error) {
        onError(error);
      }
    }, FOLLOW_POLL_MS);
    const stop = async (): Promise<void> => {
      stopped = true;
      clearInterval(poll);
      unsubscribe();
      cancelOnClose();
      await running;
    };
    // Closing the log ends the follow too, rather than leaving a timer polling a closed store.
    const cancelOnClose = this.#context.onClose(stop);
    run();
    return stop;
  }
}
