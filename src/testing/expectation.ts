/**
 * What the Given/When/Then specs share: histories in short form, and failures as node's
 * AssertionError with expected and actual side by side.
 */
import { AssertionError, deepStrictEqual } from 'node:assert';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { Identity, NewEvent, Operation } from '../model/types.ts';

/**
 * An event of a history: a `NewEvent` as `append` takes it, or the short form of an action,
 * `{ aggregate, patch, reason? }` (plus `triggers` and `encrypt` as on an intent), appended by
 * the actor `['test', 'given']` from the source `'given'`.
 */
export type GivenEvent = NewEvent | {
  aggregate: Identity;
  patch: Operation[];
  reason?: string;
  triggers?: Identity[];
  encrypt?: { key: Identity; paths?: string[] };
};

const GIVEN_ACTOR: Identity = ['test', 'given'];

export function toNewEvent(event: GivenEvent): NewEvent {
  if (typeof event !== 'object' || event === null || 'action' in event || 'effect' in event) return event;
  const { aggregate, patch, reason = 'given', triggers, encrypt } = event;
  const action: NewEvent = { source: 'given', action: { reason, actor: GIVEN_ACTOR, aggregate, patch } };
  if (triggers !== undefined) action.triggers = triggers;
  if (encrypt !== undefined) action.encrypt = encrypt;
  return action;
}

/**
 * `events` as NewEvents; with `single`, one event alone is taken as a list of one.
 * @throws InvalidArgumentError naming `name` for anything else.
 */
export function eventList(events: unknown, name: string, single: boolean): NewEvent[] {
  if (Array.isArray(events)) return events.map((e: GivenEvent) => toNewEvent(e));
  if (single && typeof events === 'object' && events !== null) return [toNewEvent(events as GivenEvent)];
  throw new InvalidArgumentError(`${name}: expected ${single ? 'an event or an array of events' : 'an array of events'}, got ${describe(events)}`);
}

/** JSON as it would be stored: properties that are undefined are left out. */
export const plain = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/** `value` as a message shows it: JSON where it can be. */
export function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return describe(value);
  }
}

/**
 * node's AssertionError comparing `actual` with `expected`, its message the `header` and then the
 * diff (recent Node versions add it to a message of one's own; where one does not, it is added here).
 */
export function assertionError(header: string, actual: unknown, expected: unknown): AssertionError {
  const error = new AssertionError({ message: header, actual, expected, operator: 'deepStrictEqual' });
  if (!error.message.includes('+ actual - expected')) {
    try {
      deepStrictEqual(actual, expected);
    } catch (e) {
      error.message = `${header}\n${(e as Error).message.replace(/^Expected values to be strictly deep-equal:\n/, '')}`;
    }
  }
  return error;
}
