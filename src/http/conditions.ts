/**
 * Conditions: what opens a route of the gateway. A condition sees who asks (the actor, as
 * `authenticate` said, never the request), what they ask (a command, a fact's arguments) and,
 * where one is involved, an aggregate and its current state; it answers yes or no.
 */
import { InvalidArgumentError } from '../errors.ts';
import { describe, parsePointer } from '../model/json-pointer.ts';
import type { Identity } from '../model/types.ts';

/** Who makes a request: what `authenticate` returned. */
export interface Actor {
  /** The actor's identity: the `actor` of every action a command appends for them. */
  readonly id: Identity;
  /** What the actor may do, for {@link role}. */
  readonly roles?: readonly string[];
}

/**
 * What a condition looks at. `command` on a command route; `args` on a fact, a list of a view,
 * the event stream and the explorer; `aggregate` and its `state` where a route involves one (a
 * view's entry; a command's first aggregate, the decider's `aggregates(command)[0]`, with every
 * one of them in `involved`).
 */
export interface ConditionContext {
  readonly actor: Actor;
  readonly command?: unknown;
  readonly args?: Readonly<Record<string, unknown>>;
  readonly aggregate?: Identity;
  /** The aggregate's current state: the view's state on a view, the fold of the log on a command. */
  readonly state?: unknown;
  /** On a command: every aggregate the decider names, each with its current state. */
  readonly involved?: readonly { readonly aggregate: Identity; readonly state: unknown }[];
}

/** Opens a route when it returns (or resolves to) true; anything else keeps it shut. */
export type Condition = (context: ConditionContext) => boolean | Promise<boolean>;

function checkConditions(conditions: readonly unknown[], name: string): Condition[] {
  if (conditions.length === 0) throw new InvalidArgumentError(`${name}: expected at least one condition, got none`);
  conditions.forEach((condition, i) => {
    if (typeof condition !== 'function') throw new InvalidArgumentError(`${name}: argument ${i}: expected a condition (a function), got ${describe(condition)}`);
  });
  return conditions as Condition[];
}

/**
 * Open to actors with role `name` among their `roles`.
 * @throws InvalidArgumentError when `name` is not a non-empty string.
 * @example
 * serve(log, { authenticate, views: { members: { projection, allow: role('librarian') } } });
 */
export function role(name: string): Condition {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`role(name): expected a non-empty string, got ${describe(name)}`);
  return ({ actor }) => actor.roles?.includes(name) === true;
}

/**
 * Open when any of `conditions` is, tried in order (the later ones are not asked once one says yes).
 * @throws InvalidArgumentError for no conditions or one that is not a function.
 * @example
 * const allow = anyOf(role('librarian'), owner('/member'));
 */
export function anyOf(...conditions: Condition[]): Condition {
  const checked = checkConditions(conditions, 'anyOf(...conditions)');
  return async (context) => {
    for (const condition of checked) if ((await condition(context)) === true) return true;
    return false;
  };
}

/**
 * Open when every one of `conditions` is, tried in order (the later ones are not asked once one says no).
 * @throws InvalidArgumentError for no conditions or one that is not a function.
 * @example
 * const allow = allOf(role('member'), ({ actor, command }) => (command as { member?: unknown }).member === actor.id[1]);
 */
export function allOf(...conditions: Condition[]): Condition {
  const checked = checkConditions(conditions, 'allOf(...conditions)');
  return async (context) => {
    for (const condition of checked) if ((await condition(context)) !== true) return false;
    return true;
  };
}

/**
 * Open when the value at `path` (a JSON Pointer) in the aggregate's state equals the actor's id
 * (the second part of its identity: `'alice'` for `['user', 'alice']`). Shut where no aggregate
 * is involved or its state has nothing there.
 * @throws InvalidArgumentError when `path` is not a JSON Pointer.
 * @example
 * views: { members: { projection: members, allow: owner('/name') } }  // alice reads her own record
 */
export function owner(path: string): Condition {
  const segments = parsePointer(path);
  if (typeof segments === 'string') throw new InvalidArgumentError(`owner(path): ${segments}`);
  return ({ actor, state }) => {
    let value: unknown = state;
    for (const segment of segments) {
      if (typeof value !== 'object' || value === null || !Object.hasOwn(value, segment)) return false;
      value = (value as Record<string, unknown>)[segment];
    }
    return value === actor.id[1];
  };
}
