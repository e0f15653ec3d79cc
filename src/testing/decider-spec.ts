/**
 * Given/When/Then for deciders: given a history, when a command is executed, then these intents
 * (or this rejection). It runs the real decider through the real command service on a real,
 * throw-away store; a failed expectation is node's `AssertionError`, so any runner reports it.
 */
import { isDeepStrictEqual } from 'node:util';
import { createCommandService, type CommandResult } from '../commands/command-service.ts';
import { checkDecider, decider as checkedDecider, type Decider, type Intent } from '../commands/decider.ts';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { Identity, NewEvent } from '../model/types.ts';
import type { Log } from '../api/log.ts';
import { assertionError, eventList, plain, shown, type GivenEvent } from './expectation.ts';
import { openTestStore, type TestLogOptions } from './test-log.ts';

export type { GivenEvent } from './expectation.ts';

/** Who executes the command in a spec. */
export interface WhenOptions {
  /** Default `['user', 'test']`. */
  actor?: Identity;
  /** Default `'deciderSpec'`. */
  source?: string;
}

/** A spec being written: its history so far, and the race to stage, if any. */
export interface DeciderSpec<Command> {
  /**
   * Appends `events` to the history, as one batch (call it again for another batch).
   * @throws InvalidArgumentError when `events` is not an array.
   * @example
   * deciderSpec(reserve).given([{ aggregate: ['book', 'N'], patch: [{ op: 'add', path: '/copies', value: 1 }] }])
   */
  given(events: GivenEvent[]): DeciderSpec<Command>;
  /**
   * A race: `events` are appended by another connection to the store after the decider has read
   * its states and decided the first time, before the service appends what it decided, so the
   * service meets the conflict and decides again on the states that include them.
   * @throws InvalidArgumentError when `events` is not an event or an array of them.
   * @example
   * deciderSpec(reserve).given(history).meanwhile({ aggregate: ['book', 'N'], patch: [...] }).when(command)
   */
  meanwhile(events: GivenEvent | GivenEvent[]): DeciderSpec<Command>;
  /**
   * The command to execute; finish with `.then(intents)` or `.thenRejected(reason)`.
   * @throws InvalidArgumentError for bad options.
   * @example
   * deciderSpec(reserve).given([]).when({ isbn: 'N', member: 'alice' }, { actor: ['user', 'alice'] })
   */
  when(command: Command, options?: WhenOptions): DeciderExpectation;
}

/** What a spec expects of its command. Nothing runs until one of these is called. */
export interface DeciderExpectation {
  /**
   * Runs the spec and expects the decider, on its last attempt, to have decided exactly
   * `intents` (compared deeply and strictly, properties that are undefined left out), and the
   * service to have appended them.
   * @throws AssertionError (node:assert) showing expected and actual side by side.
   * @throws whatever the command service throws for a decider's bug (`CommandError`,
   *   `InvalidEventError`), as it is.
   * @example
   * await deciderSpec(reserve).given(history).when(command).then([{ aggregate: ['book', 'N'], reason: 'reserved', patch }]);
   */
  then(intents: Intent[]): Promise<void>;
  /**
   * Runs the spec and expects the decider to refuse the command with `reason` (and, when given,
   * `details`, compared deeply and strictly), writing nothing.
   * @throws AssertionError (node:assert) showing expected and actual side by side.
   * @example
   * await deciderSpec(reserve).given([]).when(command).thenRejected('no-copies');
   */
  thenRejected(reason: string, details?: unknown): Promise<void>;
}

const DEFAULT_ACTOR: Identity = ['user', 'test'];

/** What a command came to, in the form expected and actual are compared in. */
type Outcome = { intents: unknown } | { rejected: string; details?: unknown } | { conflict: number[]; attempts: number } | { status: string };

function summary(outcome: Outcome): string {
  if ('intents' in outcome) return 'intents';
  if ('rejected' in outcome) return `rejected "${outcome.rejected}"`;
  if ('conflict' in outcome) return `a conflict after ${outcome.attempts} attempts`;
  return outcome.status;
}

function assertOutcome(name: string, command: unknown, actual: Outcome, expected: Outcome): void {
  if (isDeepStrictEqual(actual, expected)) return;
  const what = summary(expected) === summary(actual) ? `expected other ${summary(expected)}` : `expected ${summary(expected)}, got ${summary(actual)}`;
  throw assertionError(`deciderSpec("${name}") when ${shown(command)}: ${what}`, actual, expected);
}

interface Plan {
  given: NewEvent[][];
  meanwhile: NewEvent[];
}

async function run<Command>(target: Decider<Command>, plan: Plan, command: Command, options: Required<WhenOptions>, logOptions: TestLogOptions): Promise<{ result: CommandResult; intents: unknown }> {
  const store = await openTestStore(logOptions);
  const { log } = store;
  let other: Log | undefined;
  try {
    for (const batch of plan.given) {
      if (batch.length === 0) continue;
      const result = await log.append(batch, { base: await log.head() });
      if (result.status !== 'ok') throw new Error(`deciderSpec: the given events were not appended (${result.status})`);
    }
    let decided: unknown;
    // The decider as the service sees it, but for two things around the real decide: what it
    // decided last is kept for the comparison, and the race is staged after its first decision.
    const observed = checkedDecider<Command>({
      name: target.name,
      aggregates: (c) => target.aggregates(c),
      async decide(c, states, context) {
        decided = await target.decide(c, states, context);
        if (context.attempt === 1 && plan.meanwhile.length > 0) {
          other = await store.connect();
          const result = await other.append(plan.meanwhile, { base: await other.head() });
          if (result.status !== 'ok') throw new Error(`deciderSpec: the meanwhile events were not appended (${result.status})`);
        }
        return decided as Intent[];
      },
    });
    const commands = createCommandService(log, { deciders: [observed as Decider<never>], retry: { minDelayMs: 0, maxDelayMs: 0 } });
    const result = await commands.execute(target.name, command, { actor: options.actor, source: options.source });
    return { result, intents: decided };
  } finally {
    await other?.close();
    await log.close();
  }
}

function outcomeOf(result: CommandResult, intents: unknown, withDetails: boolean): Outcome {
  switch (result.status) {
    case 'ok':
      return { intents: plain(intents) };
    case 'rejected':
      return withDetails ? { rejected: result.reason, details: result.details } : { rejected: result.reason };
    case 'conflict':
      return { conflict: result.conflicts.map((c) => c.theirs.seq), attempts: result.attempts };
    default:
      return { status: result.status };
  }
}

function spec<Command>(target: Decider<Command>, plan: Plan, logOptions: TestLogOptions): DeciderSpec<Command> {
  return Object.freeze({
    given: (events: GivenEvent[]) => spec(target, { ...plan, given: [...plan.given, eventList(events, 'given(events)', false)] }, logOptions),
    meanwhile: (events: GivenEvent | GivenEvent[]) => spec(target, { ...plan, meanwhile: [...plan.meanwhile, ...eventList(events, 'meanwhile(events)', true)] }, logOptions),
    when(command: Command, options: WhenOptions = {}): DeciderExpectation {
      if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`options: expected { actor?, source? }, got ${describe(options)}`);
      const who = { actor: options.actor ?? DEFAULT_ACTOR, source: options.source ?? 'deciderSpec' };
      return Object.freeze({
        then(intents: Intent[], ...rest: unknown[]): Promise<void> {
          if (typeof intents === 'function') {
            // `await spec.when(...)` calls then(resolve, reject): reject, saying what is missing,
            // rather than leave the await hanging.
            const error = new InvalidArgumentError('deciderSpec: finish .when(command) with .then(intents) or .thenRejected(reason) instead of awaiting it');
            if (typeof rest[0] === 'function') (rest[0] as (e: unknown) => void)(error);
            return Promise.resolve();
          }
          return (async () => {
            if (!Array.isArray(intents)) throw new InvalidArgumentError(`then(intents): expected an array of intents, got ${describe(intents)}`);
            const { result, intents: decided } = await run(target, plan, command, who, logOptions);
            assertOutcome(target.name, command, outcomeOf(result, decided, false), { intents: plain(intents) });
          })();
        },
        async thenRejected(reason: string, ...rest: [details?: unknown]): Promise<void> {
          if (typeof reason !== 'string' || reason.length === 0) throw new InvalidArgumentError(`thenRejected(reason): expected a non-empty string, got ${describe(reason)}`);
          const withDetails = rest.length > 0;
          const { result, intents } = await run(target, plan, command, who, logOptions);
          assertOutcome(target.name, command, outcomeOf(result, intents, withDetails), withDetails ? { rejected: reason, details: rest[0] } : { rejected: reason });
        },
      });
    },
  });
}

/**
 * Starts a Given/When/Then spec of a decider. Each expectation runs on its own throw-away store
 * (see `openTestLog`; `options` are its options, such as a `clock`): the history is appended,
 * then the command is executed through a real command service, with the race of `meanwhile`
 * staged by a second connection to the store.
 *
 * @throws InvalidArgumentError when `decider` is not a decider.
 * @example
 * await deciderSpec(reserve)
 *   .given([{ aggregate: ['book', 'N'], patch: [{ op: 'add', path: '/copies', value: 1 }] }])
 *   .when({ isbn: 'N', member: 'alice' }, { actor: ['user', 'alice'] })
 *   .then([{ aggregate: ['book', 'N'], reason: 'reserved', patch: [{ op: 'replace', path: '/copies', value: 0 }] }]);
 */
export function deciderSpec<Command>(decider: Decider<Command>, options: TestLogOptions = {}): DeciderSpec<Command> {
  return spec(checkDecider(decider, 'decider') as Decider<Command>, { given: [], meanwhile: [] }, options);
}
