/**
 * Process managers: react to events with commands, each event taking effect exactly once.
 *
 * The state of each instance lives in the log, on the aggregate `['$process', '<name>:<instance>']`
 * (log/reactions.ts). For each event that belongs to an instance, the manager reads that state
 * and the states its commands name, all at one head; `react` (pure) gives the new state and the
 * commands; the command service's deciders decide them without appending (commands/
 * command-service.ts, `runnerOf`); and then the new state, every command's actions and the
 * rejections are ONE append, based on that head, under the idempotency key
 * `$process:<name>:<seq>`. The key is the mark that the event was handled: an append under a key
 * already seen writes nothing, from whichever process, so a crash at any moment or two processes
 * running one manager never emit a command twice, and since nothing else marks an event, never
 * lose one either. An event whose reaction writes nothing needs no mark: react is pure, so doing
 * it again after a crash changes nothing.
 *
 * The position (the consumer `$process:<name>`) only saves work: it is committed every few
 * hundred events, and a restart from an older one finds the keys of what was done meanwhile.
 */
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { coreOf } from '../api/internal.ts';
import type { Log } from '../api/log.ts';
import { InvalidArgumentError, InvalidEventError, KeyDestroyedError, ProcessError, RejectedError } from '../errors.ts';
import { append } from '../log/append.ts';
import { followLog, prepareFollowOptions, rethrowLater } from '../log/follow.ts';
import type { LogCore } from '../log/log-core.ts';
import { actionSeqs, aggregateMatcher, readDecrypted, readEvents } from '../log/read.ts';
import { instanceAggregate, PROCESS_CONSUMER, PROCESS_KIND, rejectionsAggregate } from '../log/reactions.ts';
import { keyGoneSince, type DecryptedWith } from '../log/reveal.ts';
import { statesAt } from '../log/state.ts';
import { applyPatchAtomic } from '../model/fold.ts';
import { describe } from '../model/json-pointer.ts';
import { packr } from '../model/msgpack.ts';
import type { AppendResult, Conflict, Id, Identity, LogEvent, NewAction } from '../model/types.ts';
import { identityKey, isPlainObject, jsonProblem, prepareIdentity, prepareReadOptions, prepareSeq, readArgument, type PreparedReadOptions } from '../model/validate.ts';
import { backoffDelay, duplicateOf, intentError, runnerOf, type CommandRunner, type CommandService } from './command-service.ts';
import type { DecideContext } from './decider.ts';

/** A command a reaction asks for: the decider's name in the command service, and the command. */
export interface ProcessCommand {
  name: string;
  command: unknown;
}

/** What `react` returns: the instance's new state, and the commands the event causes. */
export interface Reaction<State> {
  state: State;
  commands?: ProcessCommand[];
}

/** How a process manager is defined (see {@link createProcessManager}). */
export interface ProcessManagerOptions<State> {
  /** Only events on aggregates of these kinds (and effects affecting them), as `read` selects. */
  kinds?: string[];
  /** Only events on these aggregates (and effects affecting them). */
  aggregates?: Identity[];
  /** First seq a new process manager reads. Default 1. */
  from?: number;
  /** The instance an event belongs to; undefined: not this manager's. Pure. */
  instance(event: LogEvent): Id | undefined;
  /** The state of an instance before its first event. Pure. */
  init(instance: Id): State;
  /**
   * The new state of the instance and the commands the event causes. Pure: it may run again for
   * the same event (after a crash, or a conflict on the instance), and must then decide the same.
   * States are JSON. Effects reach it too.
   */
  react(state: State, event: LogEvent): Reaction<State>;
  /** The command service whose deciders run the commands (on the same log). */
  commands: CommandService;
  /**
   * What a rejected command does: `'record'` (default) records it (see `rejections()`) and the
   * manager moves on; `'stop'` stops the manager before that event, until a later catch-up finds
   * every command of it accepted.
   */
  onRejected?: 'record' | 'stop';
}

/** A command a decider refused, as the process manager recorded it. */
export interface Rejection {
  /** The event whose reaction asked for the command. */
  seq: number;
  instance: Id;
  /** The command's (decider's) name. */
  name: string;
  reason: string;
}

/** What one `catchUp` of a process manager did. */
export interface ProcessCatchUpResult {
  /** First seq looked at. */
  from: number;
  /** The position afterwards: every event up to it is handled. */
  to: number;
  /** Events reacted to (those `instance` claimed), including those another process had already handled. */
  events: number;
  /** Commands this catch-up appended the decisions of (not those refused, nor another process's). */
  commands: number;
  /** With `onRejected: 'stop'`: the rejection the manager stopped at, before its event (`to` is `seq - 1`). */
  stopped?: Rejection;
}

/**
 * A process manager: consumes events, keeps one state per instance in the log, and emits
 * commands, each event taking effect exactly once. Obtain one with {@link createProcessManager}.
 */
export interface ProcessManager<State> {
  /** The manager's name. */
  readonly name: string;

  /**
   * Handles every event after the position up to the head, in order, one append per event
   * whose reaction writes anything (its new state, its commands' actions, its rejections).
   * @throws ProcessError when `instance`, `init` or `react` fails, a decider fails, or an
   *   event's commands conflict on every attempt: the manager stays before that event.
   * @throws LogClosedError after the log is closed.
   * @example
   * const { events, commands } = await fulfilment.catchUp();
   */
  catchUp(): Promise<ProcessCatchUpResult>;

  /**
   * Catches up, then keeps up: at once after appends from this process, within 100 ms after
   * appends from other processes. `onCatchUp` hears of every catch-up that moved the position
   * (or stopped); errors go to `onError` (default: rethrown asynchronously) and following goes on.
   * @returns a function that stops following and resolves once the current catch-up is done.
   * @example
   * const stop = fulfilment.follow({ onError: console.error });
   * await stop();
   */
  follow(options?: { onError?: (error: unknown) => void; onCatchUp?: (result: ProcessCatchUpResult) => void }): () => Promise<void>;

  /**
   * The state of an instance, as the log holds it now; undefined before its first change. Once a
   * key of an event folded into it is destroyed, it reads as the log's `redact` value.
   * @throws InvalidArgumentError for an id that is not a non-empty string or a safe integer.
   * @example
   * const order = await fulfilment.get('order-7');
   */
  get(instance: Id): Promise<State | undefined>;

  /**
   * The last seq handled (`from - 1` before the first catch-up). Events after it that another
   * process handled meanwhile are found by their keys and not handled again.
   * @example
   * const lag = (await log.head()) - (await fulfilment.position());
   */
  position(): Promise<number>;

  /**
   * Every command its deciders refused, in the order of the events (with `onRejected: 'record'`).
   * They are in the log, written with the event's reaction, on the aggregate `['$process', name]`.
   * @example
   * for await (const { seq, instance, name, reason } of fulfilment.rejections()) console.log(seq, instance, name, reason);
   */
  rejections(): AsyncIterable<Rejection>;
}

const OPTION_KEYS = new Set(['kinds', 'aggregates', 'from', 'instance', 'init', 'react', 'commands', 'onRejected']);

type FollowOptions = { onError?: (error: unknown) => void; onCatchUp?: (result: ProcessCatchUpResult) => void };
/** Events handled between two commits of the position. */
const CHECKPOINT_EVENTS = 256;
/** At most this long between two commits of the position while catching up. */
const CHECKPOINT_MS = 1_000;
/** Events whose appends may be in flight at once (their commits shared), when their aggregates are disjoint. */
const PIPELINE_DEPTH = 32;
/** Instance states kept in memory (checked against the log before use). */
const CACHE_ENTRIES = 10_000;

/** What the manager knows of an instance: its state as of `at`, and the keys it is sealed under. */
interface Instance {
  exists: boolean;
  state: unknown;
  keys: Identity[];
  at: number;
}

/** The validated definition, which `processSpec` builds the same manager from on a test store. */
export interface ProcessDefinition<State> {
  readonly name: string;
  readonly options: ProcessManagerOptions<State>;
  readonly runner: CommandRunner;
}

const definitions = new WeakMap<object, ProcessDefinition<unknown>>();

/**
 * The definition behind a process manager from {@link createProcessManager}.
 * @throws InvalidArgumentError naming `name` for anything else.
 */
export function processDefinitionOf(manager: unknown, name: string): ProcessDefinition<unknown> {
  const definition = typeof manager === 'object' && manager !== null ? definitions.get(manager) : undefined;
  if (definition === undefined) throw new InvalidArgumentError(`${name}: expected a process manager from createProcessManager, got ${describe(manager)}`);
  return definition;
}

function prepareName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`name: expected a non-empty string, got ${describe(name)}`);
  if (name.includes(':')) throw new InvalidArgumentError(`name: expected no ":" (it separates the name from the instance in ["$process", "<name>:<instance>"]), got ${JSON.stringify(name)}`);
  prepareIdentity([PROCESS_KIND, name], 'name');
  return name;
}

function prepareOptions<State>(options: unknown): ProcessManagerOptions<State> {
  options = readArgument(options, 'options');
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { instance, init, react, commands, kinds?, aggregates?, from?, onRejected? }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  for (const fn of ['instance', 'init', 'react'] as const) {
    if (typeof options[fn] !== 'function') throw new InvalidArgumentError(`options.${fn}: expected a function, got ${describe(options[fn])}`);
  }
  if (options.onRejected !== undefined && options.onRejected !== 'record' && options.onRejected !== 'stop') {
    throw new InvalidArgumentError(`options.onRejected: expected "record" or "stop", got ${describe(options.onRejected)}`);
  }
  return options as unknown as ProcessManagerOptions<State>;
}

/** `id` checked as an instance id: a non-empty string or a safe integer that names an aggregate. */
function checkInstance(name: string, id: unknown, what: string): Identity | string {
  if (!(typeof id === 'string' && id.length > 0) && !(typeof id === 'number' && Number.isSafeInteger(id))) {
    return `${what}: expected a non-empty string or a safe integer, got ${describe(id)}`;
  }
  try {
    return prepareIdentity(instanceAggregate(name, id), what);
  } catch (e) {
    return (e as Error).message;
  }
}

/** Merges `extra` into a list of identities, each once. */
function withTriggers(own: readonly Identity[] | undefined, extra: readonly Identity[]): Identity[] {
  const found = new Map<string, Identity>();
  for (const identity of [...(own ?? []), ...extra]) found.set(identityKey(identity), identity);
  return [...found.values()];
}

/** The decisions of one attempt: the batch and where each part of it came from. */
interface Attempt {
  batch: NewAction[];
  /** Index in the batch of each command's first action, and its count. */
  commands: { name: string; first: number; count: number }[];
  stateIndex: number | undefined;
  rejected: Rejection[];
  /** The state written (when `stateIndex` is defined) and the keys it is sealed under. */
  state: unknown;
  keys: Identity[];
  /** Every aggregate the decisions read or the batch writes (identity keys). */
  footprint: Set<string>;
}

/** An event being handled, across its attempts. */
interface Handling<State> {
  /** As read for the latest attempt (afresh after its instance changed). */
  event: LogEvent;
  /** What `event` was decrypted with. */
  decrypted: DecryptedWith;
  instance: { id: Id; aggregate: Identity };
  /** Its idempotency key: the mark that it was handled. */
  key: string;
  /** What react returned, until the instance changes. */
  reaction: Reaction<State> | undefined;
  /** Those of the last attempt, for the deciders' context. */
  conflicts: readonly Conflict[];
  attempt: number;
}

/** An attempt decided, to append based on `head`. */
interface Prepared {
  head: number;
  decided: Attempt;
}

function footprintOf(prepared: Prepared | Outcome): Set<string> | undefined {
  return 'head' in prepared ? prepared.decided.footprint : undefined;
}

/** What handling one event came to. */
type Outcome = { kind: 'done'; commands: number } | { kind: 'stopped'; rejection: Rejection };

class StoredProcess<State> {
  readonly name: string;
  readonly #core: LogCore;
  readonly #runner: CommandRunner;
  readonly #options: ProcessManagerOptions<State>;
  readonly #filter: PreparedReadOptions;
  readonly #from: number;
  readonly #consumer: string;
  readonly #who: { actor: Identity; source: string };
  readonly #cache = new Map<string, Instance>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(core: LogCore, name: string, options: ProcessManagerOptions<State>, runner: CommandRunner) {
    this.name = name;
    this.#core = core;
    this.#runner = runner;
    this.#options = options;
    this.#from = options.from === undefined ? 1 : prepareSeq(options.from, 'options.from', 1);
    this.#filter = prepareReadOptions({ from: this.#from, replay: false, kinds: options.kinds, aggregates: options.aggregates });
    // Built for its checks: an aggregate filter with kinds that exclude it is the caller's to know.
    aggregateMatcher(this.#filter);
    this.#consumer = `${PROCESS_CONSUMER}${name}`;
    this.#who = { actor: [PROCESS_KIND, name], source: `process:${name}` };
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #meta(): Promise<{ stored: Uint8Array | undefined; position: number }> {
    this.#core.assertOpen();
    const stored = await this.#core.storage.consumerMeta(this.#consumer);
    return { stored, position: stored === undefined ? this.#from - 1 : (packr.unpack(stored) as { position: number }).position };
  }

  async position(): Promise<number> {
    return (await this.#meta()).position;
  }

  catchUp(): Promise<ProcessCatchUpResult> {
    return this.#core.track(this.#exclusive(() => this.#catchUp()));
  }

  async #catchUp(): Promise<ProcessCatchUpResult> {
    const head = await this.#core.storage.head();
    let meta = await this.#meta();
    let position = meta.position;
    const result: ProcessCatchUpResult = { from: position + 1, to: position, events: 0, commands: 0 };
    /** Commits `position` unless another process got further; returns where to go on from. */
    const checkpoint = async (): Promise<number> => {
      for (;;) {
        if (meta.position === position) return position;
        if (meta.position > position) return meta.position;
        const next = packr.pack({ position });
        if (await this.#core.storage.commitStates(this.#consumer, meta.stored, next, [])) {
          meta = { stored: next, position };
          return position;
        }
        meta = await this.#meta();
      }
    };
    // Appends in flight, by seq (ascending). Each holds its footprint: what its decision read
    // and what it writes. An event is decided while others are in flight only if its footprint
    // shares no aggregate with theirs, so it decides as it would after them: the outcome is that
    // of handling the events one after the other, with their commits shared.
    const flying = new Map<number, { footprint: ReadonlySet<string>; done: Promise<void> }>();
    const depth = this.#options.onRejected === 'stop' ? 1 : PIPELINE_DEPTH;
    // Where handling ends: the first event that failed, or that a rejection stopped at.
    const end: { failed?: { seq: number; error: unknown }; stopped?: Rejection } = {};
    const fail = (seq: number, error: unknown) => {
      if (end.failed === undefined || seq < end.failed.seq) end.failed = { seq, error };
    };
    const settle = async (): Promise<void> => {
      await Promise.all([...flying.values()].map((f) => f.done));
    };
    const stop = (rejection: Rejection) => {
      if (end.stopped === undefined || rejection.seq < end.stopped.seq) end.stopped = rejection;
    };
    const ended = () => end.failed !== undefined || end.stopped !== undefined;
    let read = position;
    reading: while (read < head && !ended()) {
      let sinceCommit = 0;
      let lastCommit = performance.now();
      for await (const { event, decrypted } of readDecrypted(this.#core, { ...this.#filter, from: read + 1 }, head)) {
        try {
          if (await this.#start(event, decrypted, flying, depth, result, stop, (error) => fail(event.seq, error))) sinceCommit++;
        } catch (error) {
          // What failed before anything was in flight for it (react, a decider): it stops here.
          fail(event.seq, error);
        }
        if (ended()) break reading;
        read = event.seq;
        if (sinceCommit >= CHECKPOINT_EVENTS || performance.now() - lastCommit >= CHECKPOINT_MS) {
          position = flying.size === 0 ? read : Math.min(...flying.keys()) - 1;
          const at = await checkpoint();
          sinceCommit = 0;
          lastCommit = performance.now();
          if (at > read) {
            // Another process got further: what it handled has its keys; go on from there.
            await settle();
            read = at;
            continue reading;
          }
        }
      }
      // Events after the last one read, up to the head, are not this manager's.
      if (!ended()) read = Math.max(read, head);
    }
    await settle();
    const bound = Math.min(end.failed?.seq ?? Infinity, end.stopped?.seq ?? Infinity) - 1;
    position = Math.max(position, Math.min(read, bound));
    position = Math.max(position, await checkpoint());
    if (end.failed !== undefined) throw end.failed.error;
    if (end.stopped !== undefined) result.stopped = end.stopped;
    result.to = position;
    return result;
  }

  /**
   * Starts handling one event: decides it once nothing in flight touches its instance or
   * anything its decisions read or write, then leaves its append (and retries) in flight.
   * Returns whether an append was started.
   */
  async #start(
    event: LogEvent,
    decrypted: DecryptedWith,
    flying: Map<number, { footprint: ReadonlySet<string>; done: Promise<void> }>,
    depth: number,
    result: ProcessCatchUpResult,
    stop: (rejection: Rejection) => void,
    fail: (error: unknown) => void,
  ): Promise<boolean> {
    const instance = 'action' in event && event.action.aggregate[0].startsWith('$') ? undefined : this.#instanceOf(event);
    if (instance === undefined) return false;
    const overlaps = (keys: ReadonlySet<string>) => [...flying.values()].filter((f) => [...keys].some((key) => f.footprint.has(key)));
    const own = new Set([identityKey(instance.aggregate)]);
    while (flying.size >= depth || overlaps(own).length > 0) await Promise.race([...flying.values()].map((f) => f.done));
    const handling: Handling<State> = { event, decrypted, instance, key: `${PROCESS_CONSUMER}${this.name}:${event.seq}`, reaction: undefined, conflicts: [], attempt: 1 };
    let prepared = await this.#prepare(handling);
    for (let footprint = footprintOf(prepared); footprint !== undefined && overlaps(footprint).length > 0; footprint = footprintOf(prepared)) {
      // It read or writes what an append in flight writes: decide again after those.
      await Promise.all(overlaps(footprint).map((f) => f.done));
      prepared = await this.#prepare(handling);
    }
    if ('kind' in prepared) {
      if (prepared.kind === 'stopped') stop(prepared.rejection);
      else result.events++;
      return false;
    }
    result.events++;
    const seq = event.seq;
    const done = this.#complete(handling, prepared).then((outcome) => {
      if (outcome.kind === 'stopped') stop(outcome.rejection);
      else result.commands += outcome.commands;
    }, fail).finally(() => flying.delete(seq));
    flying.set(seq, { footprint: prepared.decided.footprint, done });
    return true;
  }

  #instanceOf(event: LogEvent): { id: Id; aggregate: Identity } | undefined {
    let id: unknown;
    try {
      id = this.#options.instance(event);
    } catch (e) {
      throw new ProcessError(this.name, event.seq, `instance(event) threw: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    if (id === undefined) return undefined;
    const aggregate = checkInstance(this.name, id, 'instance(event)');
    if (typeof aggregate === 'string') throw new ProcessError(this.name, event.seq, aggregate);
    return { id: id as Id, aggregate };
  }

  /** The instance's state at `head`: from memory when the log shows nothing new on it since. */
  async #instance(aggregate: Identity, head: number): Promise<Instance> {
    const key = identityKey(aggregate);
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.at <= head) {
      if (cached.at === head) return cached;
      const [actions, effects] = await Promise.all([
        this.#core.storage.actionSeqs(aggregate, cached.at + 1, head + 1, 1),
        this.#core.storage.effectSeqs(aggregate, cached.at + 1, head + 1, 1),
      ]);
      if (actions.length === 0 && effects.length === 0) {
        cached.at = head;
        return cached;
      }
    }
    const loaded = await this.#load(aggregate, head);
    this.#remember(key, loaded);
    return loaded;
  }

  #remember(key: string, instance: Instance): void {
    this.#cache.delete(key);
    this.#cache.set(key, instance);
    if (this.#cache.size > CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value as string);
  }

  /**
   * The state of an instance at `head`: every state action replaces `/state` whole, so the last
   * one is the state (redacted when one of its keys is gone), sealed under the keys it was
   * decrypted with (none when redacted: nothing in it is plaintext any more).
   */
  async #load(aggregate: Identity, head: number): Promise<Instance> {
    const seqs = await actionSeqs(this.#core, aggregate, 1, head + 1);
    const last = seqs.at(-1);
    if (last === undefined) return { exists: false, state: undefined, keys: [], at: head };
    const { events: [event], decrypted: [used] } = (await this.#core.events([last])) as { events: [LogEvent]; decrypted: [DecryptedWith] };
    const document = ('action' in event ? applyPatchAtomic({}, event.action.patch) : {}) as { state?: unknown };
    return { exists: true, state: document.state, keys: [...used.keys], at: head };
  }

  async get(instance: Id): Promise<State | undefined> {
    const aggregate = checkInstance(this.name, instance, 'instance');
    if (typeof aggregate === 'string') throw new InvalidArgumentError(aggregate);
    this.#core.assertOpen();
    const loaded = await this.#load(aggregate, await this.#core.storage.head());
    return loaded.exists ? (loaded.state as State) : undefined;
  }

  async *rejections(): AsyncIterable<Rejection> {
    this.#core.assertOpen();
    for await (const event of readEvents(this.#core, prepareReadOptions({ aggregates: [rejectionsAggregate(this.name)], replay: false }))) {
      if (!('action' in event)) continue;
      for (const op of event.action.patch) if (op.op === 'add') yield op.value as Rejection;
    }
  }

  /** Reads the event being handled again, with the keys as they are now. */
  async #readAgain(handling: Handling<State>): Promise<void> {
    const { events, decrypted } = await this.#core.events([handling.event.seq]);
    handling.event = events[0] as LogEvent;
    handling.decrypted = decrypted[0] as DecryptedWith;
  }

  /**
   * The next attempt at an event: the states read at a fresh head (the instance's from memory
   * when nothing changed it), `react` when it has not run or must run again, the decisions.
   */
  async #prepare(handling: Handling<State>): Promise<Prepared | Outcome> {
    for (;;) {
      this.#core.assertOpen();
      const head = await this.#core.storage.head();
      const current = await this.#instance(handling.instance.aggregate, head);
      handling.reaction ??= this.#react(current.exists ? (current.state as State) : this.#init(handling.instance.id, handling.event.seq), handling.event);
      // A key of the event destroyed since it was read: its plaintext must not go anywhere.
      if (await keyGoneSince(this.#core, handling.decrypted)) {
        await this.#readAgain(handling);
        handling.reaction = undefined;
        continue;
      }
      const decided = await this.#decide(handling, current, head);
      if ('kind' in decided) return decided;
      if (decided.batch.length === 0) return { kind: 'done', commands: 0 };
      return { head, decided };
    }
  }

  /** Appends what was decided under the event's key, deciding again after a conflict, until it is done. */
  async #complete(handling: Handling<State>, prepared: Prepared): Promise<Outcome> {
    const attempts = this.#runner.retry.attempts;
    const { instance } = handling;
    for (;;) {
      const { head, decided } = prepared;
      const seq = handling.event.seq;
      let result: AppendResult;
      try {
        result = await this.#append(decided, head, handling.key, seq);
      } catch (e) {
        if (!(e instanceof KeyDestroyedError) || decided.keys.length === 0 || handling.attempt >= attempts) throw e instanceof ProcessError ? e : new ProcessError(this.name, seq, (e as Error).message, e);
        // A key the state was to be sealed under was destroyed meanwhile: read it all again.
        result = { status: 'conflict', accepted: [], conflicts: [] };
      }
      switch (result.status) {
        case 'ok': {
          if (decided.stateIndex !== undefined) {
            const at = result.events.at(-1)?.seq ?? head;
            this.#remember(identityKey(instance.aggregate), { exists: true, state: decided.state, keys: decided.keys, at });
          }
          return { kind: 'done', commands: decided.commands.length };
        }
        case 'duplicate':
          // Handled before (by this process before a crash, or by another): what it wrote counts.
          this.#cache.delete(identityKey(instance.aggregate));
          return { kind: 'done', commands: 0 };
        case 'invalid-base':
          throw new ProcessError(this.name, seq, `the log's head went back to ${result.head}`);
        case 'conflict': {
          if (handling.attempt >= attempts) throw new ProcessError(this.name, seq, `its commands conflicted on all ${attempts} attempts (the command service's retry.attempts)`);
          handling.conflicts = result.conflicts;
          const own = [instance.aggregate, rejectionsAggregate(this.name)].map(identityKey);
          if (result.conflicts.length === 0 || result.conflicts.some((c) => 'action' in c.ours && own.includes(identityKey(c.ours.action.aggregate)))) {
            // The instance changed (an effect on it, or another process): react again on its
            // fresh state, to the event read afresh (an effect may have redacted it).
            this.#cache.delete(identityKey(instance.aggregate));
            await this.#readAgain(handling);
            handling.reaction = undefined;
          }
          await sleep(backoffDelay(this.#runner.retry, handling.attempt));
          handling.attempt++;
          const next = await this.#prepare(handling);
          if ('kind' in next) return next;
          prepared = next;
        }
      }
    }
  }

  #init(id: Id, seq: number): State {
    let state: State;
    try {
      state = this.#options.init(id);
    } catch (e) {
      throw new ProcessError(this.name, seq, `init(instance) threw: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    const problem = jsonProblem(state);
    if (problem !== undefined) throw new ProcessError(this.name, seq, `init(instance) returned a state that is not JSON${problem.path === '' ? '' : ` at ${problem.path}`}: ${problem.expectation}`, problem.cause);
    return state;
  }

  #react(state: State, event: LogEvent): Reaction<State> {
    let reaction: unknown;
    try {
      // Its own copy: a react that changes the state it was given must not change ours.
      reaction = this.#options.react(structuredClone(state), event);
    } catch (e) {
      throw new ProcessError(this.name, event.seq, `react threw: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    if (!isPlainObject(reaction) || !('state' in reaction)) throw new ProcessError(this.name, event.seq, `react returned ${describe(reaction)}, expected { state, commands? }`);
    const problem = jsonProblem(reaction.state);
    if (problem !== undefined) throw new ProcessError(this.name, event.seq, `react returned a state that is not JSON${problem.path === '' ? '' : ` at ${problem.path}`}: ${problem.expectation}`, problem.cause);
    const commands = reaction.commands ?? [];
    if (!Array.isArray(commands)) throw new ProcessError(this.name, event.seq, `react returned commands ${describe(commands)}, expected an array of { name, command }`);
    commands.forEach((command: unknown, i) => {
      if (!isPlainObject(command) || typeof command.name !== 'string' || !('command' in command)) {
        throw new ProcessError(this.name, event.seq, `react returned commands[${i}] ${describe(command)}, expected { name, command }`);
      }
    });
    return { state: reaction.state as State, commands: commands as ProcessCommand[] };
  }

  /**
   * The batch of one attempt: the new state (when it changed), each command decided on the
   * states at `head` with the actions of the commands before it applied (as if they had run one
   * after the other), and the rejections; or where the manager stops.
   */
  async #decide(handling: Handling<State>, current: Instance, head: number): Promise<Attempt | Outcome> {
    const { event, instance, attempt, conflicts } = handling;
    const reaction = handling.reaction as Reaction<State>;
    const triggers = 'triggers' in event ? event.triggers : [];
    const footprint = new Set([identityKey(instance.aggregate)]);
    const decided: Attempt = { batch: [], commands: [], stateIndex: undefined, rejected: [], state: reaction.state, keys: [], footprint };
    if (!current.exists || !isDeepStrictEqual(current.state, reaction.state)) {
      // Sealed under every key folded into the instance so far that still lives, and the event's.
      decided.keys = withTriggers(current.keys, handling.decrypted.keys);
      const state: NewAction = {
        source: this.#who.source,
        action: { reason: 'reacted', actor: this.#who.actor, aggregate: instance.aggregate, patch: [{ op: 'add', path: '/state', value: reaction.state }, { op: 'add', path: '/seq', value: event.seq }] },
        triggers: [...triggers],
      };
      if (decided.keys.length > 0) (state as { encrypt?: unknown }).encrypt = { keys: decided.keys, paths: ['/state'] };
      decided.stateIndex = 0;
      decided.batch.push(state);
    }
    const overlay = new Map<string, unknown>();
    const context: DecideContext = Object.freeze({ actor: this.#who.actor, now: new Date(this.#core.now()), attempt, conflicts: Object.freeze([...conflicts]) });
    for (const [i, { name, command }] of (reaction.commands ?? []).entries()) {
      let refusal: RejectedError | undefined;
      let actions: NewAction[] = [];
      try {
        const aggregates = this.#runner.aggregates(name, command);
        if (aggregates instanceof RejectedError) {
          refusal = aggregates;
        } else {
          for (const aggregate of aggregates) footprint.add(identityKey(aggregate));
          const missing = aggregates.filter((aggregate) => !overlay.has(identityKey(aggregate)));
          const read = await statesAt(this.#core, missing, head);
          missing.forEach((aggregate, j) => overlay.set(identityKey(aggregate), read.states[j]));
          const states = aggregates.map((aggregate) => overlay.get(identityKey(aggregate)));
          const outcome = await this.#runner.decide(name, command, aggregates, states, head, context, this.#who);
          if (outcome instanceof RejectedError) refusal = outcome;
          else actions = outcome;
        }
      } catch (e) {
        if (e instanceof ProcessError) throw e;
        throw new ProcessError(this.name, event.seq, `command ${i} (${JSON.stringify(name)}): ${e instanceof Error ? e.message : String(e)}`, e);
      }
      if (refusal !== undefined) {
        const rejection: Rejection = { seq: event.seq, instance: instance.id, name, reason: refusal.reason };
        if (this.#options.onRejected === 'stop') return { kind: 'stopped', rejection };
        decided.rejected.push(rejection);
        continue;
      }
      decided.commands.push({ name, first: decided.batch.length, count: actions.length });
      for (const action of actions) {
        // What a command wrote because of the event depends on what the event depends on.
        if (triggers.length > 0) action.triggers = withTriggers(action.triggers, triggers);
        decided.batch.push(action);
        const target = identityKey(action.action.aggregate);
        if (overlay.has(target)) overlay.set(target, applyPatchAtomic(overlay.get(target), action.action.patch));
      }
    }
    for (const action of decided.batch) footprint.add(identityKey(action.action.aggregate));
    if (decided.rejected.length > 0) footprint.add(identityKey(rejectionsAggregate(this.name)));
    decided.rejected.forEach((rejection, i) => {
      decided.batch.push({
        source: this.#who.source,
        action: { reason: 'rejected', actor: this.#who.actor, aggregate: rejectionsAggregate(this.name), patch: [{ op: 'add', path: `/${event.seq}.${i}`, value: rejection }] },
      });
    });
    return decided;
  }

  /** Appends an attempt's batch under the event's key; a decider's invalid intent is named in its terms. */
  async #append(decided: Attempt, head: number, key: string, seq: number): Promise<AppendResult> {
    try {
      return await append(this.#core, decided.batch, { base: head, idempotencyKey: key }, true);
    } catch (e) {
      if (!(e instanceof InvalidEventError)) throw e;
      // Validation comes before the key is looked at: a repeat is a duplicate whatever it decided.
      const duplicate = await duplicateOf(this.#core, key);
      if (duplicate !== undefined) return duplicate;
      const command = decided.commands.find((c) => e.index >= c.first && e.index < c.first + c.count);
      if (command === undefined) throw new ProcessError(this.name, seq, e.message, e);
      const inTerms = intentError(command.name, new InvalidEventError(e.index - command.first, e.path, e.message.replace(/^events\[\d+\]\.?[^:]*: /, ''), { cause: e }));
      throw new ProcessError(this.name, seq, inTerms.message, inTerms);
    }
  }

  follow(options: FollowOptions = {}): () => Promise<void> {
    options = prepareFollowOptions<FollowOptions>(options, ['onError', 'onCatchUp']);
    this.#core.assertOpen();
    const onCatchUp = options.onCatchUp;
    const onResult = onCatchUp === undefined ? undefined : (result: ProcessCatchUpResult) => {
      if (result.to >= result.from || result.stopped !== undefined) onCatchUp(result);
    };
    return followLog(this.#core, () => this.catchUp(), onResult, options.onError ?? rethrowLater).stop;
  }
}

/** What `createProcessManager` returns: the documented members, and nothing else reachable. */
class ProcessManagerFacade<State> implements ProcessManager<State> {
  readonly #process: StoredProcess<State>;

  constructor(process: StoredProcess<State>) {
    this.#process = process;
  }

  get name(): string {
    return this.#process.name;
  }

  catchUp(): Promise<ProcessCatchUpResult> {
    return this.#process.catchUp();
  }

  follow(options?: { onError?: (error: unknown) => void; onCatchUp?: (result: ProcessCatchUpResult) => void }): () => Promise<void> {
    return this.#process.follow(options);
  }

  get(instance: Id): Promise<State | undefined> {
    return this.#process.get(instance);
  }

  position(): Promise<number> {
    return this.#process.position();
  }

  rejections(): AsyncIterable<Rejection> {
    return this.#process.rejections();
  }
}

/**
 * A process manager over `log` named `name`: it reacts to the events `kinds`/`aggregates`
 * select (as `read` does, effects included; coherence's own `$` kinds never), in order, keeps
 * one state per instance in the log, and runs the commands its reactions ask for through
 * `options.commands`, each event taking effect exactly once, across crashes and processes.
 *
 * - The new state, the actions of every command, and the rejections are one append under the
 *   key `$process:<name>:<seq>`, based on the head the states were read at. A conflict is
 *   decided again on fresh states, as the command service does, up to its `retry.attempts`;
 *   when the instance itself changed (an effect on it), `react` runs again on its fresh state.
 * - Commands of one event are decided one after the other, each on the states with the actions
 *   of those before it applied, and appended together.
 * - Actions a command writes because of an action inherit that action's triggers, and so does
 *   the state action, which is encrypted under the keys of every event folded into the
 *   instance so far: a shred of one affects what the process wrote, and its state reads as the
 *   `redact` value from then on.
 * - Commands run as the actor `['$process', name]` from the source `process:<name>`.
 *
 * @throws InvalidArgumentError for a bad name (non-empty, no ":"), options, or a command
 *   service of another log.
 * @example
 * const fulfilment = createProcessManager<{ paid?: boolean }>(log, 'fulfilment', {
 *   kinds: ['order'],
 *   instance: (event) => ('action' in event ? event.action.aggregate[1] : undefined),
 *   init: () => ({}),
 *   react: (state, event) => 'action' in event && event.action.reason === 'paid'
 *     ? { state: { paid: true }, commands: [{ name: 'reserve', command: { order: event.action.aggregate[1] } }] }
 *     : { state },
 *   commands,
 * });
 * await fulfilment.catchUp();
 */
export function createProcessManager<State>(log: Log, name: string, options: ProcessManagerOptions<State>): ProcessManager<State> {
  const core = coreOf(log);
  const checkedName = prepareName(name);
  const checked = prepareOptions<State>(options);
  const runner = runnerOf(checked.commands, 'options.commands');
  if (runner.core !== core) throw new InvalidArgumentError('options.commands: expected a command service of the same log, got one of another');
  const manager = new ProcessManagerFacade(new StoredProcess(core, checkedName, checked, runner));
  definitions.set(manager, { name: checkedName, options: checked as ProcessManagerOptions<unknown>, runner });
  return manager;
}

