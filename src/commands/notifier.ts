/**
 * Notifiers: where side effects live. Each selected event is handed to `handle` until its promise
 * resolves (at least once), with retries, dead letters, and order per aggregate.
 *
 * What is stored (the consumer `$notifier:<name>`, see log/reactions.ts) is a checkpoint: the
 * position (every event up to it was handled, filtered out, or is open), and one state per open
 * event, `['$open', seq]`: pending (failed, to be tried again), dead (a dead letter), or waiting
 * (behind an open event of one of its aggregates). The record and the open events change
 * together, in one `commitStates` whose compare on the record makes every writer (this process,
 * another running the same notifier, the CLI marking a dead letter) see the others' commits.
 *
 * Delivery is one event at a time, in seq order, except what waits: a failed event waits for its
 * next attempt (jittered exponential backoff) while the events of other aggregates go on; the
 * later events of its aggregates wait behind it. A commit of the checkpoint starts after every
 * WINDOW events handed out, 100 ms after the first outcome it does not record yet (so a slow
 * handler's events are recorded one by one), and before waiting; it runs while delivery goes
 * on, one at a time.
 *
 * "In flight": an event handed to `handle` whose outcome no landed commit records yet. A crash
 * (or a commit that lost to another writer, after which the notifier reloads what is stored)
 * repeats exactly those; delivery waits for the running commit rather than have more than
 * MAX_IN_FLIGHT of them, and with a slow handler they are the last 100 ms or so.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { coreOf } from '../api/internal.ts';
import type { Log } from '../api/log.ts';
import { InvalidArgumentError } from '../errors.ts';
import { followLog, prepareFollowOptions, rethrowLater } from '../log/follow.ts';
import type { LogCore } from '../log/log-core.ts';
import { aggregateMatcher, readPages } from '../log/read.ts';
import { NOTIFIER_CONSUMER } from '../log/reactions.ts';
import { keyGoneSince, NOT_DECRYPTED, type DecryptedWith, type Revealed } from '../log/reveal.ts';
import { sameBytes } from '../model/bytes.ts';
import { describe } from '../model/json-pointer.ts';
import { packr } from '../model/msgpack.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey, isPlainObject, prepareIdentity, prepareReadOptions, prepareSeq, readArgument, type PreparedReadOptions } from '../model/validate.ts';
import type { StateChange } from '../storage/engine.ts';
import { backoffDelay, prepareRetry, type Retry, type RetryOptions } from './command-service.ts';

/** What `handle` gets besides the event. */
export interface DeliveryContext {
  /** 1 on the first attempt at this event; one more on each later one (across restarts and redeliveries). */
  readonly attempt: number;
  /** `<notifier name>:<seq>`: the same on every attempt, for the receiving side to deduplicate on. */
  readonly idempotencyKey: string;
}

/** How a notifier is defined (see {@link createNotifier}). */
export interface NotifierOptions {
  /** Only events on aggregates of these kinds (and effects affecting them), as `read` selects. */
  kinds?: string[];
  /** Only events on these aggregates (and effects affecting them). */
  aggregates?: Identity[];
  /** First seq a new notifier delivers. Default 1. */
  from?: number;
  /** Delivers one event (the side effect). The event counts as delivered once the promise resolves; a rejection is a failed attempt. */
  handle(event: LogEvent, context: DeliveryContext): Promise<void>;
  /** Attempts in all before an event becomes a dead letter (default 5), and the backoff between them (default 100 ms doubling up to 60 s). */
  retry?: RetryOptions;
}

/** An event that failed every attempt: what the notifier keeps of it (never its payload). */
export interface DeadLetter {
  seq: number;
  /** The aggregate of an action (an effect has none). */
  aggregate?: Identity;
  /** Attempts made. */
  attempts: number;
  /** The message of the last attempt's error. */
  error: string;
  /** When it became a dead letter (the log's clock). */
  at: Date;
}

/** What one `catchUp` of a notifier did. */
export interface NotifierCatchUpResult {
  /** First seq looked at. */
  from: number;
  /** The position afterwards. */
  to: number;
  /** Attempts that resolved. */
  delivered: number;
  /** Attempts that failed. */
  failed: number;
  /** Events that became dead letters. */
  deadLettered: number;
}

/**
 * A notifier: hands events to a handler at least once, with retries, dead letters and order per
 * aggregate. Obtain one with {@link createNotifier}.
 */
export interface Notifier {
  /** The notifier's name. */
  readonly name: string;

  /**
   * Delivers every event up to the head (as of the call) and returns once each is delivered, a
   * dead letter, or waiting behind a dead letter of one of its aggregates; it waits out the
   * backoff of events being retried meanwhile (delivering other aggregates' events).
   * @throws LogClosedError after the log is closed.
   * @example
   * const { delivered, deadLettered } = await mailer.catchUp();
   */
  catchUp(): Promise<NotifierCatchUpResult>;

  /**
   * Delivers, then keeps delivering: at once after appends from this process, within 100 ms after
   * appends from other processes; retries when their backoff is over; dead letters marked for
   * redelivery (here or by another process, such as the CLI) within a second. Errors of the
   * store go to `onError` (default: rethrown asynchronously) and following goes on; a failing
   * `handle` is no error, it is retried.
   * @returns a function that stops following and resolves once the current delivery is done.
   * @example
   * const stop = mailer.follow({ onError: console.error });
   * await stop();
   */
  follow(options?: { onError?: (error: unknown) => void }): () => Promise<void>;

  /**
   * The position: every event up to it was delivered, filtered out, or is open (being retried,
   * a dead letter, or waiting behind one), as the last committed checkpoint says.
   * @example
   * const lag = (await log.head()) - (await mailer.position());
   */
  position(): Promise<number>;

  /**
   * The dead letters, by seq, as stored.
   * @example
   * for await (const { seq, error } of mailer.deadLetters()) console.log(seq, error);
   */
  deadLetters(): AsyncIterable<DeadLetter>;

  /**
   * Gives a dead letter another `retry.attempts` attempts: it is marked in the stored checkpoint
   * at once, and delivered (then the events waiting behind it, in order) by this notifier's
   * follow, its next catch-up, or whichever process runs the notifier.
   * @throws InvalidArgumentError when `seq` is not a dead letter of this notifier; nothing changes.
   * @example
   * await mailer.redeliver(42);
   * await mailer.catchUp();
   */
  redeliver(seq: number): Promise<void>;

  /**
   * Drops a dead letter: it will not be delivered, and the events waiting behind it go on (in
   * order, at the next delivery).
   * @throws InvalidArgumentError when `seq` is not a dead letter of this notifier; nothing changes.
   * @example
   * await mailer.discard(42);
   */
  discard(seq: number): Promise<void>;
}

const OPTION_KEYS = new Set(['kinds', 'aggregates', 'from', 'handle', 'retry']);
const DEFAULT_RETRY: Retry = { attempts: 5, minDelayMs: 100, maxDelayMs: 60_000 };
/** Events handed out before the checkpoint is committed (the commit then runs while delivery goes on). */
const WINDOW = 256;
/** Events handed out whose outcome no landed commit records yet, at most: delivery waits for the commit in flight beyond this. */
export const MAX_IN_FLIGHT = 1024;
/** How long an outcome may go unrecorded. */
const COMMIT_MS = 100;
/** How often a follow looks for a change another process made (a redelivery marked by the CLI). */
const POLL_MS = 500;
/** The page before the first one is read. */
const NO_EVENTS: Revealed = Object.freeze({ events: [], decrypted: [] });
/** The kind of the open events' states. */
const OPEN_KIND = '$open';

type Status = 'pending' | 'dead' | 'waiting';

/** An open event as stored. */
interface OpenRecord {
  s: Status;
  /** Attempts made. */
  n: number;
  /** It becomes a dead letter when `n` reaches this. */
  l: number;
  /** The last error's message. */
  e?: string;
  /** When it became a dead letter (ms, the log's clock). */
  t?: number;
  lanes: Identity[];
  /** An action's aggregate. */
  a?: Identity;
}

/** An open event in memory. */
interface Open extends OpenRecord {
  seq: number;
  keys: string[];
  /** When a pending one may be tried again (performance.now()). */
  due: number;
}

interface Checkpoint {
  stored: Uint8Array | undefined;
  position: number;
  revision: number;
  open: Map<number, Open>;
  /** Per aggregate, the seqs of its open events, ascending: only the first may be delivered. */
  lanes: Map<string, number[]>;
  pending: Set<number>;
  /** Waiting events that became first in a lane: delivered once first in all of theirs. */
  candidates: Set<number>;
  dead: number;
  /** Seqs whose open state changed since the last commit (removed ones included). */
  changed: Set<number>;
  /** Something to commit: a change, or the position moved. */
  dirty: boolean;
  handed: number;
  firstUnrecorded: number | undefined;
}

interface Request {
  seq: number;
  op: 'redeliver' | 'discard';
  resolve: () => void;
  reject: (error: unknown) => void;
}

class CommitLost extends Error {}

function prepareOptions(options: unknown): { handle: NotifierOptions['handle']; filter: PreparedReadOptions; from: number; retry: Retry } {
  options = readArgument(options, 'options');
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { handle, kinds?, aggregates?, from?, retry? }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  if (typeof options.handle !== 'function') throw new InvalidArgumentError(`options.handle: expected a function, got ${describe(options.handle)}`);
  const from = options.from === undefined ? 1 : prepareSeq(options.from, 'options.from', 1);
  const filter = prepareReadOptions({ from, replay: false, kinds: options.kinds, aggregates: options.aggregates });
  return { handle: options.handle as NotifierOptions['handle'], filter, from, retry: prepareRetry(options.retry, DEFAULT_RETRY) };
}

class StoredNotifier {
  readonly name: string;
  readonly #core: LogCore;
  readonly #handle: NotifierOptions['handle'];
  readonly #filter: PreparedReadOptions;
  readonly #matches: ((aggregate: Identity) => boolean) | undefined;
  readonly #from: number;
  readonly #retry: Retry;
  readonly #consumer: string;
  #checkpoint: Checkpoint | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #requests: Request[] = [];
  /** Requests applied to the checkpoint in memory, resolved once it is committed. */
  #applied: Request[] = [];
  #running = false;
  /** The checkpoint commit in flight, and whether it is still running. */
  #committing: Promise<void> | undefined;
  #commitRunning = false;
  /** Events handed out by this object, in all; and how many of them the last landed commit records. */
  #handed = 0;
  #landedAt = 0;
  #wake: (() => void) | undefined;
  /** Wakes this object's follow, if it follows. */
  #onChange: (() => void) | undefined;

  constructor(core: LogCore, name: string, options: unknown) {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`name: expected a non-empty string, got ${describe(name)}`);
    prepareIdentity(['$notifier', name], 'name');
    const prepared = prepareOptions(options);
    this.name = name;
    this.#core = core;
    this.#handle = prepared.handle;
    this.#filter = prepared.filter;
    this.#matches = aggregateMatcher(prepared.filter);
    this.#from = prepared.from;
    this.#retry = prepared.retry;
    this.#consumer = `${NOTIFIER_CONSUMER}${name}`;
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }

  async position(): Promise<number> {
    this.#core.assertOpen();
    const stored = await this.#core.storage.consumerMeta(this.#consumer);
    return stored === undefined ? this.#from - 1 : (packr.unpack(stored) as { position: number }).position;
  }

  async *deadLetters(): AsyncIterable<DeadLetter> {
    this.#core.assertOpen();
    for await (const { aggregate, value } of this.#core.storage.allStates(this.#consumer, OPEN_KIND)) {
      const record = packr.unpack(value) as OpenRecord;
      if (record.s !== 'dead') continue;
      const letter: DeadLetter = { seq: aggregate[1] as number, attempts: record.n, error: record.e ?? '', at: new Date(record.t ?? 0) };
      if (record.a !== undefined) letter.aggregate = record.a;
      yield letter;
    }
  }

  /** The checkpoint as stored now: the one in memory if nobody committed since, else read again. */
  async #load(): Promise<Checkpoint> {
    this.#core.assertOpen();
    const stored = await this.#core.storage.consumerMeta(this.#consumer);
    if (this.#checkpoint !== undefined && sameBytes(this.#checkpoint.stored, stored)) return this.#checkpoint;
    const meta = stored === undefined ? undefined : (packr.unpack(stored) as { position: number; revision: number });
    const checkpoint: Checkpoint = {
      stored,
      position: meta?.position ?? this.#from - 1,
      revision: meta?.revision ?? 0,
      open: new Map(),
      lanes: new Map(),
      pending: new Set(),
      candidates: new Set(),
      dead: 0,
      changed: new Set(),
      dirty: false,
      handed: 0,
      firstUnrecorded: undefined,
    };
    for await (const { aggregate, value } of this.#core.storage.allStates(this.#consumer, OPEN_KIND)) {
      const record = packr.unpack(value) as OpenRecord;
      // A pending event is tried again at once after a restart: its backoff was this process's.
      this.#open(checkpoint, { ...record, seq: aggregate[1] as number, keys: record.lanes.map(identityKey), due: 0 });
    }
    for (const open of checkpoint.open.values()) if (open.s === 'waiting' && this.#isFirst(checkpoint, open)) checkpoint.candidates.add(open.seq);
    this.#checkpoint = checkpoint;
    return checkpoint;
  }

  /** Adds an open event (after every open one of its lanes: events open in seq order). */
  #open(checkpoint: Checkpoint, open: Open): void {
    checkpoint.open.set(open.seq, open);
    for (const lane of open.keys) {
      const queue = checkpoint.lanes.get(lane);
      if (queue === undefined) checkpoint.lanes.set(lane, [open.seq]);
      else queue.push(open.seq);
    }
    if (open.s === 'pending') checkpoint.pending.add(open.seq);
    if (open.s === 'dead') checkpoint.dead++;
  }

  /** Closes an open event (delivered or discarded): the next one of each of its lanes may go. */
  #close(checkpoint: Checkpoint, open: Open): void {
    checkpoint.open.delete(open.seq);
    checkpoint.pending.delete(open.seq);
    checkpoint.candidates.delete(open.seq);
    if (open.s === 'dead') checkpoint.dead--;
    for (const lane of open.keys) {
      const queue = checkpoint.lanes.get(lane) as number[];
      queue.splice(queue.indexOf(open.seq), 1);
      if (queue.length === 0) checkpoint.lanes.delete(lane);
      else checkpoint.candidates.add(queue[0] as number);
    }
    this.#touch(checkpoint, open.seq);
  }

  #isFirst(checkpoint: Checkpoint, open: Open): boolean {
    return open.keys.every((lane) => checkpoint.lanes.get(lane)?.[0] === open.seq);
  }

  #touch(checkpoint: Checkpoint, seq: number): void {
    checkpoint.changed.add(seq);
    checkpoint.dirty = true;
    checkpoint.firstUnrecorded ??= performance.now();
  }

  /** The open event to attempt next, lowest seq first: a due pending one, or a waiting one now first in all its lanes. */
  #next(checkpoint: Checkpoint, now: number): Open | undefined {
    let best: Open | undefined;
    for (const seq of checkpoint.pending) {
      const open = checkpoint.open.get(seq) as Open;
      if (open.due <= now && (best === undefined || seq < best.seq)) best = open;
    }
    for (const seq of checkpoint.candidates) {
      const open = checkpoint.open.get(seq);
      if (open === undefined || open.s !== 'waiting' || !this.#isFirst(checkpoint, open)) {
        checkpoint.candidates.delete(seq);
        continue;
      }
      if (best === undefined || seq < best.seq) best = open;
    }
    return best;
  }

  /** Whether the checkpoint is due for a commit: a window handed out, an outcome unrecorded for COMMIT_MS, a request applied, or `force`. */
  #due(checkpoint: Checkpoint, force: boolean): boolean {
    if (!checkpoint.dirty && this.#applied.length === 0) return false;
    if (force || this.#applied.length > 0) return true;
    // One commit at a time: while one runs, delivery goes on (up to MAX_IN_FLIGHT).
    if (this.#commitRunning) return false;
    return checkpoint.handed >= WINDOW || (checkpoint.firstUnrecorded !== undefined && performance.now() - checkpoint.firstUnrecorded >= COMMIT_MS);
  }

  /**
   * Commits the checkpoint when it is due. The commit runs while delivery goes on (so the
   * store's sync does not hold it up), one at a time: the next waits for it, and `force` (or a
   * request applied) waits for it to land. What it records stays in flight until then.
   * @throws CommitLost when another writer committed first (found when it is waited for).
   */
  async #commit(checkpoint: Checkpoint, force: boolean): Promise<void> {
    if (!this.#due(checkpoint, force)) {
      if (force) await this.#landed();
      return;
    }
    await this.#landed();
    const expected = checkpoint.stored;
    const revision = checkpoint.revision + 1;
    const meta = packr.pack({ position: checkpoint.position, deadLetters: checkpoint.dead, revision });
    const changes: StateChange[] = [...checkpoint.changed].map((seq) => {
      const open = checkpoint.open.get(seq);
      const value = open === undefined ? undefined : packr.pack(toRecord(open));
      return { aggregate: [OPEN_KIND, seq], value, wipe: false };
    });
    Object.assign(checkpoint, { stored: meta, revision, dirty: false, handed: 0, firstUnrecorded: undefined });
    checkpoint.changed.clear();
    const applied = this.#applied.splice(0);
    const records = this.#handed;
    this.#commitRunning = true;
    const commit = this.#core.storage.commitStates(this.#consumer, expected, meta, changes).finally(() => {
      this.#commitRunning = false;
    }).then((committed) => {
      if (!committed) {
        // Another writer committed first: what is stored is the truth; what this one handed out
        // since its last landed commit is delivered again (it was in flight).
        this.#checkpoint = undefined;
        this.#landedAt = this.#handed;
        this.#requests.unshift(...applied);
        throw new CommitLost();
      }
      this.#landedAt = Math.max(this.#landedAt, records);
      for (const request of applied) request.resolve();
    }, (error: unknown) => {
      for (const request of applied) request.reject(error);
      throw error;
    });
    // Observed by #landed; never an unhandled rejection meanwhile.
    commit.catch(() => {});
    this.#committing = commit;
    if (force || applied.length > 0) await this.#landed();
  }

  /** Waits for the commit in flight, if any. @throws CommitLost, or the store's error. */
  async #landed(): Promise<void> {
    const commit = this.#committing;
    this.#committing = undefined;
    await commit;
  }

  /** Applies the requests (redeliver, discard) to the checkpoint in memory. */
  #applyRequests(checkpoint: Checkpoint): void {
    if (this.#requests.length === 0) return;
    for (const request of this.#requests.splice(0)) {
      const open = checkpoint.open.get(request.seq);
      if (open === undefined || open.s !== 'dead') {
        request.reject(new InvalidArgumentError(`seq: expected a dead letter of notifier ${JSON.stringify(this.name)}, got ${request.seq}, which is not one`));
        continue;
      }
      if (request.op === 'discard') {
        this.#close(checkpoint, open);
      } else {
        checkpoint.dead--;
        Object.assign(open, { s: 'pending', l: open.n + this.#retry.attempts, due: 0 });
        checkpoint.pending.add(open.seq);
        this.#touch(checkpoint, open.seq);
      }
      this.#applied.push(request);
    }
  }

  /** The lanes of an effect: the selected aggregates it affects (an action's is its aggregate). */
  async #effectLanes(event: LogEvent): Promise<Identity[]> {
    const [affected] = await this.#core.storage.affected([event.seq]);
    return (affected ?? []).filter((aggregate) => this.#matches?.(aggregate) ?? true);
  }

  /**
   * One attempt at `seq`, reading it afresh unless `event` was just read (`decrypted` with what)
   * with every key it needs still live. Returns the error's message, or undefined.
   */
  async #attempt(seq: number, attempt: number, event?: LogEvent, decrypted: DecryptedWith = NOT_DECRYPTED): Promise<string | undefined> {
    if (event === undefined || (await keyGoneSince(this.#core, decrypted))) {
      [event] = (await this.#core.events([seq])).events as [LogEvent];
    }
    return this.#deliver(event, attempt);
  }

  /** Hands `event` to the handler. Returns the error's message, or undefined. */
  async #deliver(event: LogEvent, attempt: number): Promise<string | undefined> {
    try {
      await this.#handle(event, Object.freeze({ attempt, idempotencyKey: `${this.name}:${event.seq}` }));
      return undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }

  /** Records the outcome of an attempt at an open event, or at a new one (`open` undefined). */
  #outcome(checkpoint: Checkpoint, result: { delivered: number; failed: number; deadLettered: number }, seq: number, open: Open | undefined, failure: string | undefined, lanes: Identity[], aggregate: Identity | undefined): void {
    checkpoint.handed++;
    this.#handed++;
    checkpoint.firstUnrecorded ??= performance.now();
    checkpoint.dirty = true;
    if (failure === undefined) {
      result.delivered++;
      if (open !== undefined) this.#close(checkpoint, open);
      return;
    }
    result.failed++;
    if (open === undefined) {
      open = { seq, s: 'pending', n: 0, l: this.#retry.attempts, lanes, keys: lanes.map(identityKey), due: 0 };
      if (aggregate !== undefined) open.a = aggregate;
      this.#open(checkpoint, open);
    }
    open.n++;
    open.e = failure;
    if (open.n >= open.l) {
      if (open.s !== 'dead') checkpoint.dead++;
      open.s = 'dead';
      open.t = this.#core.now();
      checkpoint.pending.delete(seq);
      result.deadLettered++;
    } else {
      open.s = 'pending';
      checkpoint.pending.add(seq);
      open.due = performance.now() + backoffDelay(this.#retry, open.n);
    }
    this.#touch(checkpoint, seq);
  }

  /**
   * Delivers what is ready up to `head`; with `waitRetries`, also waits out the backoff of
   * pending events until none is left. `deliver: false` only applies requests.
   */
  async #pass(options: { head?: number; waitRetries: boolean; deliver: boolean }): Promise<NotifierCatchUpResult & { due?: number }> {
    this.#running = true;
    try {
      const head = options.head ?? (await this.#core.storage.head());
      let checkpoint = await this.#load();
      const result: NotifierCatchUpResult & { due?: number } = { from: checkpoint.position + 1, to: checkpoint.position, delivered: 0, failed: 0, deadLettered: 0 };
      // Events come a page at a time (one await per page, not per event); `at` is the next one.
      let reader: AsyncIterator<Revealed> | undefined;
      let page: Revealed = NO_EVENTS;
      let at = 0;
      for (;;) {
        try {
          this.#core.assertOpen();
          if (checkpoint !== this.#checkpoint) {
            checkpoint = await this.#load();
            await reader?.return?.();
            reader = undefined;
            page = NO_EVENTS;
            at = 0;
          }
          this.#applyRequests(checkpoint);
          if (this.#applied.length > 0) {
            await this.#commit(checkpoint, true);
            this.#onChange?.();
          }
          if (!options.deliver) {
            if (this.#requests.length === 0) break;
            continue;
          }
          // No more in flight than MAX_IN_FLIGHT: beyond, wait for the commit running to land.
          if (this.#handed - this.#landedAt >= MAX_IN_FLIGHT) await this.#landed();
          const ready = checkpoint.pending.size === 0 && checkpoint.candidates.size === 0 ? undefined : this.#next(checkpoint, performance.now());
          if (ready !== undefined) {
            checkpoint.candidates.delete(ready.seq);
            const failure = await this.#attempt(ready.seq, ready.n + 1);
            this.#outcome(checkpoint, result, ready.seq, ready, failure, ready.lanes, ready.a);
            if (this.#due(checkpoint, false)) await this.#commit(checkpoint, false);
            continue;
          }
          if (checkpoint.position < head) {
            if (at === page.events.length) {
              reader ??= readPages(this.#core, { ...this.#filter, from: checkpoint.position + 1 }, head)[Symbol.asyncIterator]();
              const next = await reader.next();
              if (next.done === true) {
                checkpoint.position = head;
                checkpoint.dirty = true;
                reader = undefined;
                page = NO_EVENTS;
                at = 0;
                continue;
              }
              page = next.value;
              at = 0;
            }
            const decrypted = page.decrypted[at] as DecryptedWith;
            const event = page.events[at++] as LogEvent;
            if ('action' in event && event.action.aggregate[0].startsWith('$')) {
              // Coherence's own bookkeeping (process states, rejections) is nobody's side effect.
              checkpoint.position = event.seq;
              checkpoint.dirty = true;
              continue;
            }
            const lanes = 'action' in event ? [event.action.aggregate] : await this.#effectLanes(event);
            const aggregate = 'action' in event ? event.action.aggregate : undefined;
            checkpoint.position = event.seq;
            checkpoint.dirty = true;
            if (checkpoint.lanes.size > 0 && lanes.some((lane) => checkpoint.lanes.has(identityKey(lane)))) {
              // Behind an open event of one of its aggregates: it waits (order per aggregate).
              const open: Open = { seq: event.seq, s: 'waiting', n: 0, l: this.#retry.attempts, lanes, keys: lanes.map(identityKey), due: 0 };
              if (aggregate !== undefined) open.a = aggregate;
              this.#open(checkpoint, open);
              this.#touch(checkpoint, event.seq);
            } else {
              this.#outcome(checkpoint, result, event.seq, undefined, decrypted.keys.length === 0 ? await this.#deliver(event, 1) : await this.#attempt(event.seq, 1, event, decrypted), lanes, aggregate);
            }
            if (this.#due(checkpoint, false)) await this.#commit(checkpoint, false);
            continue;
          }
          await this.#commit(checkpoint, true);
          let due: number | undefined;
          for (const seq of checkpoint.pending) due = Math.min(due ?? Infinity, (checkpoint.open.get(seq) as Open).due);
          if (due === undefined || !options.waitRetries) {
            if (due !== undefined) result.due = due;
            if (this.#requests.length === 0) break;
            continue;
          }
          await this.#nap(due - performance.now());
        } catch (e) {
          if (!(e instanceof CommitLost)) throw e;
        }
      }
      result.to = checkpoint.position;
      return result;
    } catch (e) {
      // The store failed (or the log closed): the requests waiting for a commit will not get one.
      await this.#landed().catch(() => {});
      for (const request of [...this.#applied.splice(0), ...this.#requests.splice(0)]) request.reject(e);
      this.#checkpoint = undefined;
      this.#landedAt = this.#handed;
      throw e;
    } finally {
      this.#running = false;
      // Requests that came after the last look go to a pass of their own.
      if (this.#requests.length > 0) void this.#exclusive(() => this.#pass({ waitRetries: false, deliver: false })).catch(() => {});
    }
  }

  /** Sleeps up to `ms`, or until woken (a request, or the log closing). */
  async #nap(ms: number): Promise<void> {
    const woken = new Promise<void>((resolve) => (this.#wake = resolve));
    const timer = new AbortController();
    const cancel = this.#core.onClose(async () => this.#wake?.());
    await Promise.race([woken, sleep(Math.max(0, ms), undefined, { signal: timer.signal }).catch(() => {})]);
    cancel();
    timer.abort();
    this.#wake = undefined;
  }

  catchUp(): Promise<NotifierCatchUpResult> {
    return this.#core.track(this.#exclusive(async () => {
      const { due: _, ...result } = await this.#pass({ head: await this.#core.storage.head(), waitRetries: true, deliver: true });
      return result;
    }));
  }

  async #request(op: Request['op'], seq: number): Promise<void> {
    const checked = prepareSeq(seq, 'seq', 1);
    this.#core.assertOpen();
    const done = new Promise<void>((resolve, reject) => this.#requests.push({ seq: checked, op, resolve, reject }));
    if (this.#running) this.#wake?.();
    else void this.#core.track(this.#exclusive(() => this.#pass({ waitRetries: false, deliver: false }))).catch((e: unknown) => {
      for (const request of this.#requests.splice(0)) request.reject(e);
    });
    await done;
  }

  redeliver(seq: number): Promise<void> {
    return this.#request('redeliver', seq);
  }

  discard(seq: number): Promise<void> {
    return this.#request('discard', seq);
  }

  follow(options: { onError?: (error: unknown) => void } = {}): () => Promise<void> {
    options = prepareFollowOptions<{ onError?: (error: unknown) => void }>(options, ['onError']);
    this.#core.assertOpen();
    let retry: NodeJS.Timeout | undefined;
    const following = followLog(
      this.#core,
      () => this.#core.track(this.#exclusive(() => this.#pass({ waitRetries: false, deliver: true }))),
      (result) => {
        clearTimeout(retry);
        if (result.due !== undefined) retry = setTimeout(() => following.wake(), Math.max(0, result.due - performance.now())).unref();
      },
      options.onError ?? rethrowLater,
    );
    // A change another process committed (a dead letter marked for redelivery by the CLI).
    const poll = setInterval(() => {
      if (this.#running) return;
      this.#core.storage.consumerMeta(this.#consumer).then((stored) => {
        if (!sameBytes(stored, this.#checkpoint?.stored)) following.wake();
      }, () => {});
    }, POLL_MS).unref();
    this.#onChange = following.wake;
    return async () => {
      clearInterval(poll);
      clearTimeout(retry);
      if (this.#onChange === following.wake) this.#onChange = undefined;
      await following.stop();
    };
  }
}

function toRecord(open: Open): OpenRecord {
  const record: OpenRecord = { s: open.s, n: open.n, l: open.l, lanes: open.lanes };
  if (open.e !== undefined) record.e = open.e;
  if (open.t !== undefined) record.t = open.t;
  if (open.a !== undefined) record.a = open.a;
  return record;
}

/** What `createNotifier` returns: the documented members, and nothing else reachable. */
class NotifierFacade implements Notifier {
  readonly #notifier: StoredNotifier;

  constructor(notifier: StoredNotifier) {
    this.#notifier = notifier;
  }

  get name(): string {
    return this.#notifier.name;
  }

  catchUp(): Promise<NotifierCatchUpResult> {
    return this.#notifier.catchUp();
  }

  follow(options?: { onError?: (error: unknown) => void }): () => Promise<void> {
    return this.#notifier.follow(options);
  }

  position(): Promise<number> {
    return this.#notifier.position();
  }

  deadLetters(): AsyncIterable<DeadLetter> {
    return this.#notifier.deadLetters();
  }

  redeliver(seq: number): Promise<void> {
    return this.#notifier.redeliver(seq);
  }

  discard(seq: number): Promise<void> {
    return this.#notifier.discard(seq);
  }
}

/**
 * A notifier over `log` named `name`: hands each event `kinds`/`aggregates` select (as `read`
 * does, effects affecting them included) to `handle`, at least once, in seq order per aggregate.
 *
 * - A failed attempt is tried again after a jittered, exponentially growing pause; after
 *   `retry.attempts` attempts the event is a dead letter (its seq, aggregate, attempts, error
 *   message and time; never its payload). Meanwhile the later events of its aggregate (of each
 *   aggregate an effect affects) wait behind it; other aggregates' events go on.
 * - Every attempt gets the event as a read at that moment would: a retry reads it again, and a
 *   first attempt checks the keys of what it decrypted right before handing it out (reading it
 *   again if one is gone). Once a key is shredded, no attempt hands out the plaintext it
 *   protected (the `redact` value instead).
 * - The checkpoint (position, open events) is committed after every 256 events handed out, or
 *   100 ms, while delivery goes on: a crash repeats at most the events in flight (handed out,
 *   outcome not yet in a landed commit; never more than 1024). `context.idempotencyKey`
 *   (`name:seq`) lets the receiving side drop a repeat.
 * - One `handle` call at a time per notifier object.
 *
 * @throws InvalidArgumentError for a bad name or options.
 * @example
 * const mailer = createNotifier(log, 'welcome-mail', {
 *   kinds: ['customer'],
 *   async handle(event, { idempotencyKey }) { await mail.send(welcomeFor(event), { idempotencyKey }); },
 * });
 * const stop = mailer.follow({ onError: console.error });
 */
export function createNotifier(log: Log, name: string, options: NotifierOptions): Notifier {
  return new NotifierFacade(new StoredNotifier(coreOf(log), name, options));
}
