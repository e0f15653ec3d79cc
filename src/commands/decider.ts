/**
 * Deciders: what turns a command and the current states of the aggregates it names into the
 * actions to append. The types a decider is written against, and `decider()`, which checks a
 * definition once so that a command service can trust it.
 */
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { Conflict, Identity, Operation } from '../model/types.ts';

/**
 * One action a decider wants appended. The command service adds the actor and source of the
 * `execute` call; `triggers` and `encrypt` mean what they mean on a `NewAction`.
 */
export interface Intent {
  /** The aggregate the patch applies to. */
  aggregate: Identity;
  /** Why, in a word or two (`'reserved'`). */
  reason: string;
  /** The change, as a JSON Patch (RFC 6902) on the aggregate's state. */
  patch: Operation[];
  /** External resources this action depends on. */
  triggers?: Identity[];
  /** Encrypt valued operations (under `paths`, or all) with this key. */
  encrypt?: { key: Identity; paths?: string[] };
}

/**
 * The states a decider decides on: those of `aggregates(command)`, all folded at one `head`, so
 * they agree with each other. A new aggregate's state is `{}`.
 */
export interface States {
  /**
   * The state of one of the aggregates the decider named.
   * @throws InvalidArgumentError for an aggregate not among `aggregates(command)`.
   * @example
   * const book = states.get(['book', command.isbn]) as Book;
   */
  get(aggregate: Identity): unknown;
  /** The head every state was read at; the intents are appended based on it. */
  readonly head: number;
}

/** What a decider knows besides the command and the states. */
export interface DecideContext {
  /** Who executes the command (the actor of every action appended). */
  readonly actor: Identity;
  /** The log's clock when this attempt started. */
  readonly now: Date;
  /** 1 on the first attempt; one more each time the service decides again after a conflict. */
  readonly attempt: number;
  /** What came in between on a later attempt: the conflicts of the previous one (empty at first). */
  readonly conflicts: readonly Conflict[];
}

/**
 * A decider: a named, pure function from a command and the states it names to intents. Refuse a
 * command by throwing {@link RejectedError}; anything else thrown is a bug (`CommandError`).
 */
export interface Decider<Command> {
  /** Unique within a command service; `execute` runs a decider by its name. */
  readonly name: string;
  /** The aggregates whose states `decide` reads: one or more. */
  aggregates(command: Command): Identity[];
  /** The actions to append, as one batch; an empty list writes nothing. */
  decide(command: Command, states: States, context: DecideContext): Intent[] | Promise<Intent[]>;
}

/**
 * Checks a decider definition and returns it as a decider: a frozen object of exactly `name`,
 * `aggregates` and `decide` (the functions are called on the definition, so `this` still works).
 *
 * @throws InvalidArgumentError when the name is not a non-empty string or `aggregates` or
 *   `decide` is not a function.
 * @example
 * const reserve = decider<{ isbn: string; member: string }>({
 *   name: 'reserve',
 *   aggregates: ({ isbn }) => [['book', isbn]],
 *   decide({ isbn }, states) {
 *     const book = states.get(['book', isbn]) as { copies?: number; onLoan?: number };
 *     if ((book.onLoan ?? 0) >= (book.copies ?? 0)) throw new RejectedError('no-copies');
 *     return [{ aggregate: ['book', isbn], reason: 'reserved', patch: [{ op: 'replace', path: '/onLoan', value: (book.onLoan ?? 0) + 1 }] }];
 *   },
 * });
 */
export function decider<Command>(definition: Decider<Command>): Decider<Command> {
  return checkDecider(definition, 'definition') as Decider<Command>;
}

/**
 * The check behind {@link decider}, also run by the command service on each decider it is given.
 * @throws InvalidArgumentError naming `path`.
 */
export function checkDecider(definition: unknown, path: string): Decider<unknown> {
  if (typeof definition !== 'object' || definition === null) {
    throw new InvalidArgumentError(`${path}: expected { name, aggregates, decide }, got ${describe(definition)}`);
  }
  const { name, aggregates, decide } = definition as Record<string, unknown>;
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`${path}.name: expected a non-empty string, got ${describe(name)}`);
  for (const [member, value] of [['aggregates', aggregates], ['decide', decide]] as const) {
    if (typeof value !== 'function') throw new InvalidArgumentError(`${path}.${member}: expected a function, got ${describe(value)}`);
  }
  return Object.freeze({
    name,
    aggregates: (aggregates as (command: unknown) => Identity[]).bind(definition),
    decide: (decide as Decider<unknown>['decide']).bind(definition),
  });
}
