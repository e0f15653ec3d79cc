/**
 * Given/When/Then for process managers: given a history (which the manager handles first), when
 * one more event is appended, then the manager asks for these commands, refuses none (or this
 * one), and the instance is left in this state. It runs the real process manager with the real
 * deciders of its command service on a real, throw-away store; a failed expectation is node's
 * `AssertionError`, so any runner reports it.
 */
import { isDeepStrictEqual } from 'node:util';
import { createCommandService } from '../commands/command-service.ts';
import { createProcessManager, processDefinitionOf, type ProcessCommand, type ProcessManager, type ProcessManagerOptions, type Rejection } from '../commands/process-manager.ts';
import type { Decider } from '../commands/decider.ts';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { LogEvent, NewEvent } from '../model/types.ts';
import { assertionError, eventList, plain, shown, type GivenEvent } from './expectation.ts';
import { openTestStore, type TestLogOptions } from './test-log.ts';

/** A process spec being written: its history so far. */
export interface ProcessSpec<State> {
  /**
   * Appends `events` to the history, as one batch (call it again for another batch); the
   * manager handles them all before the event of `when`.
   * @throws InvalidArgumentError when `events` is not an array.
   * @example
   * processSpec(fulfilment).given([{ aggregate: ['order', 7], reason: 'placed', patch: [...] }])
   */
  given(events: GivenEvent[]): ProcessSpec<State>;
  /**
   * The event under test, appended after the history; finish with `thenCommands`, `thenState`
   * or `thenRejected` (they chain), then await.
   * @throws InvalidArgumentError when `event` is not an event.
   * @example
   * processSpec(fulfilment).given(history).when({ aggregate: ['order', 7], reason: 'paid', patch: [...] })
   */
  when(event: GivenEvent): ProcessExpectation<State>;
}

/**
 * What a spec expects of the manager's reaction to its event. Expectations chain; nothing runs
 * until the expectation is awaited (it is a promise-like), and then the spec runs once.
 */
export interface ProcessExpectation<State> extends PromiseLike<void> {
  /**
   * Expects the reaction to ask for exactly `commands`, in order (compared deeply and strictly,
   * properties that are undefined left out), and their deciders to accept every one (unless
   * `thenRejected` expects a refusal).
   * @example
   * await processSpec(fulfilment).given(history).when(paid).thenCommands([{ name: 'reserve', command: { order: 7 } }]);
   */
  thenCommands(commands: ProcessCommand[]): ProcessExpectation<State>;
  /**
   * Expects the instance's state afterwards to pass `check`: a function that returns false (or
   * throws its own assertion) when it does not, or a value it must equal deeply and strictly.
   * @example
   * await processSpec(fulfilment).given(history).when(paid).thenState((s) => s.status === 'reserving');
   */
  thenState(check: ((state: State | undefined) => unknown) | State): ProcessExpectation<State>;
  /**
   * Expects a command of the reaction (the one named `name`, when given) to be refused with
   * `reason`: recorded, or, with `onRejected: 'stop'`, the manager stopped before the event.
   * @example
   * await processSpec(fulfilment).given([]).when(paid).thenRejected('out-of-stock', 'reserve');
   */
  thenRejected(reason: string, name?: string): ProcessExpectation<State>;
}

interface Plan {
  given: NewEvent[][];
  when: NewEvent | undefined;
  commands: ProcessCommand[] | undefined;
  states: ((state: unknown) => unknown)[] | { value: unknown }[];
  rejected: { reason: string; name: string | undefined } | undefined;
}

/** What the manager did with the event under test. */
interface Observed {
  seq: number;
  claimed: boolean;
  commands: ProcessCommand[];
  rejections: Rejection[];
  state: unknown;
}

async function run<State>(manager: ProcessManager<State>, plan: Plan, logOptions: TestLogOptions): Promise<Observed> {
  const definition = processDefinitionOf(manager, 'manager');
  const { log } = await openTestStore(logOptions);
  try {
    const commands = createCommandService(log, {
      deciders: [...definition.runner.deciders.values()] as Decider<never>[],
      retry: { attempts: definition.runner.retry.attempts, minDelayMs: 0, maxDelayMs: 0 },
    });
    // The manager as defined, but for one thing around the real react: what it asked for last,
    // for each event, is kept for the comparison. It starts at the first event of the history.
    const asked = new Map<number, ProcessCommand[]>();
    const options: ProcessManagerOptions<unknown> = {
      ...definition.options,
      commands,
      react(state, event) {
        const reaction = definition.options.react(state, event);
        asked.set(event.seq, plain(reaction?.commands ?? []) as ProcessCommand[]);
        return reaction;
      },
    };
    delete options.from;
    const process = createProcessManager(log, definition.name, options);
    for (const batch of plan.given) {
      if (batch.length === 0) continue;
      const appended = await log.append(batch, { base: await log.head() });
      if (appended.status !== 'ok') throw new Error(`processSpec: the given events were not appended (${appended.status})`);
    }
    const history = await process.catchUp();
    if (history.stopped !== undefined) throw new Error(`processSpec: the manager stopped in the history, at event ${history.stopped.seq} (${history.stopped.name} rejected: ${history.stopped.reason})`);
    const appended = await log.append([plan.when as NewEvent], { base: await log.head() });
    if (appended.status !== 'ok') throw new Error(`processSpec: the event of when was not appended (${appended.status})`);
    const event = appended.events[0] as LogEvent;
    const result = await process.catchUp();
    const rejections: Rejection[] = [];
    if (result.stopped !== undefined) rejections.push(result.stopped);
    for await (const rejection of process.rejections()) if (rejection.seq === event.seq) rejections.push(rejection);
    const instance = definition.options.instance(event);
    return {
      seq: event.seq,
      claimed: instance !== undefined,
      commands: asked.get(event.seq) ?? [],
      rejections,
      state: instance === undefined ? undefined : await process.get(instance),
    };
  } finally {
    await log.close();
  }
}

function check(name: string, plan: Plan, observed: Observed): void {
  const header = `processSpec("${name}") when ${shown(plan.when)}`;
  if (plan.commands !== undefined && !isDeepStrictEqual(observed.commands, plain(plan.commands))) {
    throw assertionError(`${header}: expected other commands`, { commands: observed.commands }, { commands: plain(plan.commands) });
  }
  const refused = observed.rejections.map(({ name, reason }) => ({ name, reason }));
  if (plan.rejected !== undefined) {
    const { reason, name: command } = plan.rejected;
    if (!refused.some((r) => r.reason === reason && (command === undefined || r.name === command))) {
      const expected = { rejected: [command === undefined ? { reason } : { name: command, reason }] };
      throw assertionError(`${header}: expected a command rejected "${reason}", got ${refused.length === 0 ? 'none' : 'other rejections'}`, { rejected: command === undefined ? refused.map(({ reason }) => ({ reason })) : refused }, expected);
    }
  } else if (plan.commands !== undefined && refused.length > 0) {
    throw assertionError(`${header}: expected every command accepted, got ${refused.length} rejected`, { rejected: refused }, { rejected: [] });
  }
  for (const expectation of plan.states) {
    if (typeof expectation === 'function') {
      if (expectation(structuredClone(observed.state)) === false) throw assertionError(`${header}: expected the state to pass thenState's check, got one it refused`, { state: observed.state }, { state: 'one the check accepts' });
    } else if (!isDeepStrictEqual(plain(observed.state), plain(expectation.value))) {
      throw assertionError(`${header}: expected another state`, { state: plain(observed.state) }, { state: plain(expectation.value) });
    }
  }
}

function expectation<State>(manager: ProcessManager<State>, plan: Plan, logOptions: TestLogOptions): ProcessExpectation<State> {
  const name = processDefinitionOf(manager, 'manager').name;
  const next = (change: Partial<Plan>): ProcessExpectation<State> => expectation(manager, { ...plan, ...change }, logOptions);
  return Object.freeze({
    thenCommands(commands: ProcessCommand[]) {
      if (!Array.isArray(commands)) throw new InvalidArgumentError(`thenCommands(commands): expected an array of { name, command }, got ${describe(commands)}`);
      return next({ commands });
    },
    thenState(check: unknown) {
      const entry = typeof check === 'function' ? (check as (state: unknown) => unknown) : { value: check };
      return next({ states: [...plan.states, entry] as Plan['states'] });
    },
    thenRejected(reason: string, command?: string) {
      if (typeof reason !== 'string' || reason.length === 0) throw new InvalidArgumentError(`thenRejected(reason): expected a non-empty string, got ${describe(reason)}`);
      if (command !== undefined && (typeof command !== 'string' || command.length === 0)) throw new InvalidArgumentError(`thenRejected(reason, name): expected a command name, got ${describe(command)}`);
      return next({ rejected: { reason, name: command } });
    },
    then<A = void, B = never>(onFulfilled?: ((value: void) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B> {
      const done = (async () => {
        if (plan.commands === undefined && plan.states.length === 0 && plan.rejected === undefined) {
          throw new InvalidArgumentError('processSpec: finish .when(event) with .thenCommands(commands), .thenState(check) or .thenRejected(reason) before awaiting it');
        }
        check(name, plan, await run(manager, plan, logOptions));
      })();
      return done.then(onFulfilled, onRejected);
    },
  });
}

function spec<State>(manager: ProcessManager<State>, given: NewEvent[][], logOptions: TestLogOptions): ProcessSpec<State> {
  return Object.freeze({
    given: (events: GivenEvent[]) => spec(manager, [...given, eventList(events, 'given(events)', false)], logOptions),
    when(event: GivenEvent): ProcessExpectation<State> {
      const [when] = eventList(event, 'when(event)', true);
      if (Array.isArray(event)) throw new InvalidArgumentError(`when(event): expected one event, got ${describe(event)}`);
      return expectation(manager, { given, when, commands: undefined, states: [], rejected: undefined }, logOptions);
    },
  });
}

/**
 * Starts a Given/When/Then spec of a process manager (what `createProcessManager` returned).
 * Each awaited expectation runs on its own throw-away store (see `openTestLog`; `options` are its
 * options, such as a `clock`): a command service with the same deciders (no pauses between
 * retries) and the same manager, from the first event; the history is appended and handled,
 * then the event of `when`, and what the manager did with it is compared.
 *
 * @throws InvalidArgumentError when `manager` is not a process manager.
 * @example
 * await processSpec(fulfilment)
 *   .given([{ aggregate: ['stock', 'book'], patch: [{ op: 'add', path: '/count', value: 1 }] }])
 *   .when({ aggregate: ['order', 7], reason: 'paid', patch: [{ op: 'add', path: '/sku', value: 'book' }] })
 *   .thenCommands([{ name: 'reserve', command: { order: 7, sku: 'book' } }])
 *   .thenState((s) => s?.status === 'reserving');
 */
export function processSpec<State>(manager: ProcessManager<State>, options: TestLogOptions = {}): ProcessSpec<State> {
  processDefinitionOf(manager, 'manager');
  return spec(manager, [], options);
}
