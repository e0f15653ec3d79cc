/**
 * The command service: reads the states a decider names at one head, decides, appends the
 * intents as one batch based on that head, and deals with conflicts (deciding again on fresh
 * states, or handing them back to an actor who named a base), so nobody hand-writes that loop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { coreOf } from '../api/internal.ts';
import type { Log } from '../api/log.ts';
import { CommandError, InvalidArgumentError, InvalidEventError, RejectedError } from '../errors.ts';
import type { LogCore } from '../log/log-core.ts';
import { statesAt } from '../log/state.ts';
import { describe } from '../model/json-pointer.ts';
import type { AppendOptions, Conflict, Identity, LogEvent, MergeMode, NewAction } from '../model/types.ts';
import { identityKey, isPlainObject, prepareAppendOptions, prepareIdentity, type PreparedAppendOptions } from '../model/validate.ts';
import { checkDecider, type DecideContext, type Decider, type States } from './decider.ts';

/** How the service retries after a conflict it can decide again on (without `base`). */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. */
  attempts?: number;
  /** The first pause, in milliseconds; each later one may be up to twice as long. Default 5. */
  minDelayMs?: number;
  /** The longest pause, in milliseconds. Default 200. */
  maxDelayMs?: number;
}

/** Options of {@link createCommandService}. */
export interface CommandServiceOptions {
  /** The deciders `execute` runs, by name (names unique); each may take its own command type. */
  deciders: readonly Decider<never>[];
  /** Retries after a conflict (see {@link RetryOptions}). */
  retry?: RetryOptions;
}

/** Options of {@link CommandService.execute}. */
export interface ExecuteOptions {
  /** Who executes the command: the actor of every action appended. */
  actor: Identity;
  /** Where the command came from: the source of every action appended. */
  source: string;
  /**
   * The actor's view. Absent, the service reads the states itself and decides again when
   * another writer got in between; given, anything after it on the aggregates written (not in
   * `resolved`) comes back as `conflict` without deciding again.
   */
  base?: number;
  /** Seqs after `base` the actor has seen and resolved (only with `base`). */
  resolved?: number[];
  /** Passed to `append`: `'disjoint-paths'` lets changes to locations nobody else touched through. */
  merge?: MergeMode;
  /**
   * The command takes effect at most once per store under this key (1 to 512 bytes of UTF-8):
   * a repeat, from any process, returns `duplicate` with the events the first one wrote.
   */
  idempotencyKey?: string;
  /** Decide and check as for real, write nothing. */
  dryRun?: boolean;
}

/** What `execute` returns. Only `ok` wrote anything (and not in a dry run). */
export type CommandResult =
  /** Written (or, in a dry run, would be), with seqs; `events` is empty when the decider decided nothing. */
  | { status: 'ok'; events: LogEvent[]; attempts: number }
  /** The decider refused the command (`RejectedError`); nothing was written. */
  | { status: 'rejected'; reason: string; details?: unknown }
  /** Nothing was written: the conflicts of the last attempt, and how many attempts were made. */
  | { status: 'conflict'; conflicts: Conflict[]; attempts: number }
  /** The `base` given is beyond the head. */
  | { status: 'invalid-base'; head: number }
  /** The `idempotencyKey` was seen: nothing was written; the events the first execution wrote. */
  | { status: 'duplicate'; events: LogEvent[] };

/** Runs commands through their deciders. Obtain one with {@link createCommandService}. */
export interface CommandService {
  /**
   * Runs the decider `name` on `command`: reads the states of `aggregates(command)` at one head,
   * calls `decide`, and appends its intents as one batch (each an action with the given actor
   * and source) based on that head, or on `options.base`. Without `base`, a conflict means
   * another writer got in between: the service waits a jittered, growing pause, reads again and
   * decides again with `context.conflicts` set to what came in between, up to `retry.attempts`
   * attempts in all. With `base`, conflicts come back at once.
   *
   * @returns `ok` with the events (none when the decider decided nothing); `rejected` when
   *   `decide` threw `RejectedError`; `conflict` with the last attempt's conflicts; `invalid-base`;
   *   `duplicate` when the `idempotencyKey` was seen, with the events written under it then.
   * @throws InvalidArgumentError for an unknown name, bad options, or a decider asking
   *   `states.get` for an aggregate it did not name.
   * @throws InvalidEventError, its message starting `decider "<name>": intents[i]`, for an
   *   intent that is not a valid action.
   * @throws CommandError when the decider throws anything but `RejectedError` (the `cause`).
   * @throws LogClosedError after the log is closed.
   * @example
   * const result = await commands.execute('reserve', { isbn: '978-0441569595', member: 'alice' },
   *   { actor: ['user', 'alice'], source: 'web', idempotencyKey: request.id });
   * if (result.status === 'rejected') console.log(result.reason); // 'no-copies'
   */
  execute(name: string, command: unknown, options: ExecuteOptions): Promise<CommandResult>;
}

/** Retry options with every default filled in. */
export interface Retry {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
}

const DEFAULT_RETRY: Retry = { attempts: 3, minDelayMs: 5, maxDelayMs: 200 };
const EXECUTE_KEYS = new Set(['actor', 'source', 'base', 'resolved', 'merge', 'idempotencyKey', 'dryRun']);
const INTENT_KEYS = new Set(['aggregate', 'reason', 'patch', 'triggers', 'encrypt']);

/**
 * Validated retry options, the missing ones from `defaults` (the maximum at least the minimum).
 * @throws InvalidArgumentError naming `options.retry.<option>`.
 */
export function prepareRetry(retry: unknown, defaults: Retry = DEFAULT_RETRY): Retry {
  if (retry === undefined) return defaults;
  if (!isPlainObject(retry)) throw new InvalidArgumentError(`options.retry: expected { attempts?, minDelayMs?, maxDelayMs? }, got ${describe(retry)}`);
  for (const key of Object.keys(retry)) {
    if (!(key in defaults)) throw new InvalidArgumentError(`options.retry.${key}: expected one of attempts, minDelayMs, maxDelayMs, got an unknown option`);
  }
  const { attempts = defaults.attempts, minDelayMs = defaults.minDelayMs, maxDelayMs = Math.max(defaults.maxDelayMs, minDelayMs as number) } = retry;
  if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 1) {
    throw new InvalidArgumentError(`options.retry.attempts: expected an integer >= 1, got ${describe(attempts)}`);
  }
  for (const [name, value] of [['minDelayMs', minDelayMs], ['maxDelayMs', maxDelayMs]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new InvalidArgumentError(`options.retry.${name}: expected a number of milliseconds >= 0, got ${describe(value)}`);
    }
  }
  if ((maxDelayMs as number) < (minDelayMs as number)) {
    throw new InvalidArgumentError(`options.retry.maxDelayMs: expected at least minDelayMs (${minDelayMs as number}), got ${maxDelayMs as number}`);
  }
  return { attempts, minDelayMs: minDelayMs as number, maxDelayMs: maxDelayMs as number };
}

/**
 * The pause before attempt `attempt + 1`: drawn uniformly between `minDelayMs` and a ceiling that
 * doubles with each attempt up to `maxDelayMs` ("full jitter" above a floor), so writers that
 * collided once spread out instead of colliding again in step.
 */
export function backoffDelay(retry: Retry, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** attempt);
  return retry.minDelayMs + random() * (ceiling - retry.minDelayMs);
}

/** Validated execute options: the append options the actor's view gives, and who acts. */
interface PreparedExecute {
  actor: Identity;
  source: string;
  /** The caller's base, or undefined when the service reads its own. */
  base: number | undefined;
  append: PreparedAppendOptions;
}

function prepareExecuteOptions(options: unknown): PreparedExecute {
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { actor, source, base?, resolved?, merge?, idempotencyKey?, dryRun? }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!EXECUTE_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...EXECUTE_KEYS].join(', ')}, got an unknown option`);
  }
  const { actor, source, base, resolved, merge, idempotencyKey, dryRun } = options;
  const checkedActor = prepareIdentity(actor, 'options.actor');
  if (typeof source !== 'string' || source.length === 0 || !source.isWellFormed()) {
    throw new InvalidArgumentError(`options.source: expected a non-empty string, got ${describe(source)}`);
  }
  if (resolved !== undefined && base === undefined) throw new InvalidArgumentError('options.resolved: expected only with options.base (the view it resolves against)');
  const appendOptions: Record<string, unknown> = { base: base ?? 0 };
  for (const [key, value] of [['resolved', resolved], ['merge', merge], ['idempotencyKey', idempotencyKey], ['dryRun', dryRun]] as const) {
    if (value !== undefined) appendOptions[key] = value;
  }
  return { actor: checkedActor, source, base: base === undefined ? undefined : (base as number), append: prepareAppendOptions(appendOptions) };
}

/** Errors `States.get` throws, which reach the caller of `execute` as they are (not as CommandError). */
const statesErrors = new WeakSet<object>();

function statesOf(name: string, aggregates: readonly Identity[], states: readonly unknown[], head: number): States {
  const byKey = new Map(aggregates.map((aggregate, i) => [identityKey(aggregate), states[i]]));
  return Object.freeze({
    head,
    get(aggregate: Identity): unknown {
      let key: string;
      try {
        key = identityKey(prepareIdentity(aggregate, `decider "${name}": states.get(aggregate)`));
      } catch (e) {
        statesErrors.add(e as object);
        throw e;
      }
      if (!byKey.has(key)) {
        const error = new InvalidArgumentError(`decider "${name}": states.get(${JSON.stringify(aggregate)}): expected one of the aggregates it named (${aggregates.map((a) => JSON.stringify(a)).join(', ')}), got another`);
        statesErrors.add(error);
        throw error;
      }
      return byKey.get(key);
    },
  });
}

/** The decider's aggregates for `command`, checked, each once. */
export function aggregatesOf(decider: Decider<unknown>, command: unknown): Identity[] | RejectedError {
  let aggregates: unknown;
  try {
    aggregates = decider.aggregates(command);
  } catch (e) {
    if (e instanceof RejectedError) return e;
    throw new CommandError(decider.name, e);
  }
  if (!Array.isArray(aggregates) || aggregates.length === 0) {
    throw new CommandError(decider.name, undefined, `aggregates(command) returned ${Array.isArray(aggregates) ? 'an empty array' : describe(aggregates)}, expected one or more identities`);
  }
  const found = new Map<string, Identity>();
  aggregates.forEach((aggregate: unknown, i) => {
    let identity: Identity;
    try {
      identity = prepareIdentity(aggregate, `aggregates(command)[${i}]`);
    } catch (e) {
      throw new CommandError(decider.name, e);
    }
    found.set(identityKey(identity), identity);
  });
  return [...found.values()];
}

/**
 * The intents as the actions to append. Their contents are checked by `append` itself (see
 * {@link intentError}); here only what `append` cannot name in the decider's terms.
 */
function toActions(name: string, intents: unknown, actor: Identity, source: string): NewAction[] {
  if (!Array.isArray(intents)) throw new CommandError(name, undefined, `decide returned ${describe(intents)}, expected an array of intents`);
  const list = `decider "${name}": intents`;
  return intents.map((intent: unknown, i): NewAction => {
    if (!isPlainObject(intent)) throw new InvalidEventError(i, '', `expected an intent { aggregate, reason, patch }, got ${describe(intent)}`, { list });
    for (const key of Object.keys(intent)) {
      if (!INTENT_KEYS.has(key)) throw new InvalidEventError(i, key, `expected one of ${[...INTENT_KEYS].join(', ')}, got an unknown property`, { list });
    }
    const { aggregate, reason, patch, triggers, encrypt } = intent;
    const action = { source, action: { reason, actor, aggregate, patch } } as NewAction;
    if (triggers !== undefined) action.triggers = triggers as Identity[];
    if (encrypt !== undefined) action.encrypt = encrypt as NonNullable<NewAction['encrypt']>;
    return action;
  });
}

/** An `append` validation error, restated in the decider's terms: `decider "x": intents[0].patch`. */
export function intentError(name: string, error: InvalidEventError): InvalidEventError {
  const path = error.path.startsWith('action.') ? error.path.slice('action.'.length) : error.path;
  const prefix = `events[${error.index}]${error.path === '' ? '' : '.'}${error.path}: `;
  const expectation = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return new InvalidEventError(error.index, path, expectation, { cause: error, list: `decider "${name}": intents` });
}

/** The events written under an idempotency key, if it was seen (read inside a write transaction, as append reads it). */
export async function duplicateOf(core: LogCore, key: string): Promise<{ status: 'duplicate'; events: LogEvent[] } | undefined> {
  const seen = await core.storage.write(
    { base: 0, aggregates: [], conflictRecords: false, triggers: [], keys: [], idempotencyKey: key },
    (view) => ({ result: view.idempotent }),
  );
  if (seen === undefined) return undefined;
  return { status: 'duplicate', events: (await core.events(Array.from({ length: seen.last - seen.first + 1 }, (_, i) => seen.first + i))).events };
}

/**
 * What the parts above the service (process managers, the testing kit, the gateway) need of it
 * that its public face does not show: its core and deciders, and deciding a command on given
 * states without appending, so that a process manager can append what its commands decided
 * together with its own state. Reached through {@link runnerOf} or {@link serviceInternals},
 * never from the user's object.
 */
export interface CommandRunner {
  readonly core: LogCore;
  readonly retry: Retry;
  /** The deciders by name, as the service was given them (checked). */
  readonly deciders: ReadonlyMap<string, Decider<unknown>>;
  /**
   * The aggregates decider `name` reads for `command`, each once, or its refusal.
   * @throws InvalidArgumentError for an unknown name; CommandError when `aggregates` fails.
   */
  aggregates(name: string, command: unknown): Identity[] | RejectedError;
  /**
   * Decides `command` on `states` (of `aggregates`, in that order, folded at `head`): the
   * actions to append, with `actor` and `source`, or the refusal. Writes nothing.
   * @throws CommandError when `decide` fails; InvalidEventError for an intent of the wrong shape.
   */
  decide(name: string, command: unknown, aggregates: readonly Identity[], states: readonly unknown[], head: number, context: DecideContext, who: { actor: Identity; source: string }): Promise<NewAction[] | RejectedError>;
}

const runners = new WeakMap<object, CommandRunner>();

/**
 * The runner behind a command service from {@link createCommandService}.
 * @throws InvalidArgumentError naming `name` for anything else.
 */
export function runnerOf(service: unknown, name: string): CommandRunner {
  const runner = typeof service === 'object' && service !== null ? runners.get(service) : undefined;
  if (runner === undefined) throw new InvalidArgumentError(`${name}: expected a command service from createCommandService, got ${describe(service)}`);
  return runner;
}

function runnerFor(core: LogCore, deciders: ReadonlyMap<string, Decider<unknown>>, retry: Retry): CommandRunner {
  const named = (name: string): Decider<unknown> => {
    const decider = deciders.get(name);
    if (decider === undefined) throw new InvalidArgumentError(`name: expected one of ${[...deciders.keys()].map((n) => JSON.stringify(n)).join(', ')}, got ${describe(name)}`);
    return decider;
  };
  return Object.freeze({
    core,
    retry,
    deciders,
    aggregates: (name: string, command: unknown) => aggregatesOf(named(name), command),
    async decide(name: string, command: unknown, aggregates: readonly Identity[], states: readonly unknown[], head: number, context: DecideContext, who: { actor: Identity; source: string }) {
      const decider = named(name);
      let intents: unknown;
      try {
        intents = await decider.decide(command, statesOf(decider.name, aggregates, states, head), context);
      } catch (e) {
        if (e instanceof RejectedError) return e;
        if (statesErrors.has(e as object)) throw e;
        throw new CommandError(decider.name, e);
      }
      return toActions(decider.name, intents, who.actor, who.source);
    },
  });
}

/** The `CommandService` a user holds: `execute`, and nothing else reachable. */
class CommandServiceFacade implements CommandService {
  readonly #log: Log;
  readonly #core: LogCore;
  readonly #deciders: ReadonlyMap<string, Decider<unknown>>;
  readonly #retry: Retry;

  constructor(log: Log, core: LogCore, deciders: ReadonlyMap<string, Decider<unknown>>, retry: Retry) {
    this.#log = log;
    this.#core = core;
    this.#deciders = deciders;
    this.#retry = retry;
  }

  async execute(name: string, command: unknown, options: ExecuteOptions): Promise<CommandResult> {
    const decider = typeof name === 'string' ? this.#deciders.get(name) : undefined;
    if (decider === undefined) {
      throw new InvalidArgumentError(`name: expected one of ${[...this.#deciders.keys()].map((n) => JSON.stringify(n)).join(', ')}, got ${describe(name)}`);
    }
    const prepared = prepareExecuteOptions(options);
    this.#core.assertOpen();
    const key = prepared.append.idempotencyKey;
    const aggregates = aggregatesOf(decider, command);
    if (aggregates instanceof RejectedError) return this.#unlessDuplicate(key, () => rejection(aggregates));
    let conflicts: readonly Conflict[] = Object.freeze([]);
    for (let attempt = 1; ; attempt++) {
      const { states, head } = await statesAt(this.#core, aggregates);
      if (prepared.base !== undefined && prepared.base > head) return { status: 'invalid-base', head };
      const context: DecideContext = Object.freeze({ actor: prepared.actor, now: new Date(this.#core.now()), attempt, conflicts });
      let intents: unknown;
      try {
        intents = await decider.decide(command, statesOf(decider.name, aggregates, states, head), context);
      } catch (e) {
        if (e instanceof RejectedError) return this.#unlessDuplicate(key, () => rejection(e));
        if (statesErrors.has(e as object)) throw e;
        return this.#unlessDuplicate(key, () => { throw new CommandError(decider.name, e); });
      }
      // A repeat of a command that already went through may now decide otherwise (or nothing):
      // it is still the same command, so the key, not this decision, says what happens.
      const events = await this.#unlessDuplicate(key, () => toActions(decider.name, intents, prepared.actor, prepared.source), (actions) => actions.length > 0);
      if (!Array.isArray(events)) return events;
      if (events.length === 0) return { status: 'ok', events: [], attempts: attempt };
      const result = await this.#append(decider.name, events, { ...prepared.append, base: prepared.base ?? head });
      switch (result.status) {
        case 'ok':
          return { status: 'ok', events: result.events, attempts: attempt };
        case 'invalid-base':
        case 'duplicate':
          return result;
        case 'conflict':
          if (prepared.base !== undefined || attempt >= this.#retry.attempts) return { status: 'conflict', conflicts: result.conflicts, attempts: attempt };
          conflicts = Object.freeze(result.conflicts);
          await sleep(backoffDelay(this.#retry, attempt));
      }
    }
  }

  async #append(name: string, events: NewAction[], options: PreparedAppendOptions) {
    // Only what differs from append's defaults: a plain { base } is append's fast path.
    const appendOptions: AppendOptions = { base: options.base };
    if (options.resolved.size > 0) appendOptions.resolved = [...options.resolved];
    if (options.merge !== 'none') appendOptions.merge = options.merge;
    if (options.dryRun) appendOptions.dryRun = true;
    if (options.idempotencyKey !== undefined) appendOptions.idempotencyKey = options.idempotencyKey;
    try {
      return await this.#log.append(events, appendOptions);
    } catch (e) {
      if (!(e instanceof InvalidEventError)) throw e;
      // append validates before it looks at the key; a repeat is a duplicate whatever it decided.
      const duplicate = options.idempotencyKey === undefined ? undefined : await duplicateOf(this.#core, options.idempotencyKey);
      if (duplicate !== undefined) return duplicate;
      throw intentError(name, e);
    }
  }

  /**
   * `outcome()` (what the command comes to without an append), unless the idempotency key was
   * seen: then `duplicate`. Appends check their key themselves, so `skip` says when the outcome
   * goes on to one and the key need not be looked up here.
   */
  async #unlessDuplicate<T>(key: string | undefined, outcome: () => T, skip?: (value: T) => boolean): Promise<T | { status: 'duplicate'; events: LogEvent[] }> {
    let value: T;
    try {
      value = outcome();
    } catch (e) {
      const duplicate = key === undefined ? undefined : await duplicateOf(this.#core, key);
      if (duplicate !== undefined) return duplicate;
      throw e;
    }
    if (key === undefined || skip?.(value) === true) return value;
    return (await duplicateOf(this.#core, key)) ?? value;
  }
}

/**
 * The core and deciders behind a command service (the gateway reads the states a command
 * involves for its conditions); undefined for anything `createCommandService` did not make.
 * Not exported from any entry.
 */
export function serviceInternals(service: unknown): Pick<CommandRunner, 'core' | 'deciders'> | undefined {
  return typeof service === 'object' && service !== null ? runners.get(service) : undefined;
}

function rejection(error: RejectedError): CommandResult {
  return error.details === undefined ? { status: 'rejected', reason: error.reason } : { status: 'rejected', reason: error.reason, details: error.details };
}

/**
 * A command service over `log`, running the given deciders by name.
 *
 * @throws InvalidArgumentError when `log` is not an open log from `openLog`, a decider is not
 *   one (see {@link decider}), two deciders share a name, or `retry` is bad.
 * @example
 * const commands = createCommandService(log, { deciders: [reserve, giveBack], retry: { attempts: 5 } });
 * const result = await commands.execute('reserve', { isbn, member: 'alice' }, { actor: ['user', 'alice'], source: 'web' });
 */
export function createCommandService(log: Log, options: CommandServiceOptions): CommandService {
  const core = coreOf(log);
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { deciders, retry? }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (key !== 'deciders' && key !== 'retry') throw new InvalidArgumentError(`options.${key}: expected one of deciders, retry, got an unknown option`);
  }
  const { deciders, retry } = options;
  if (!Array.isArray(deciders) || deciders.length === 0) {
    throw new InvalidArgumentError(`options.deciders: expected a non-empty array of deciders, got ${Array.isArray(deciders) ? 'an empty array' : describe(deciders)}`);
  }
  const byName = new Map<string, Decider<unknown>>();
  deciders.forEach((definition: unknown, i) => {
    const checked = checkDecider(definition, `options.deciders[${i}]`);
    if (byName.has(checked.name)) throw new InvalidArgumentError(`options.deciders[${i}].name: expected a name unique among the deciders, got ${JSON.stringify(checked.name)} twice`);
    byName.set(checked.name, checked);
  });
  const prepared = prepareRetry(retry);
  const service = new CommandServiceFacade(log, core, byName, prepared);
  runners.set(service, runnerFor(core, byName, prepared));
  return service;
}
