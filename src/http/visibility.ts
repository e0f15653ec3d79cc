/**
 * Who may see what, beyond a route's own condition: the rule behind the conflicts a 409 shows
 * and the plaintext the explorer shows.
 *
 * An aggregate is visible to an actor through a view when some view's projection holds it and
 * that view's condition allows the actor with `{ actor, aggregate, state }` (the view's state).
 * A conflict of a command is shown when its aggregate (the one `ours` writes, which `theirs`
 * touched or affected) is visible through a view, or when the command's own condition allows
 * the actor with `{ actor, command, aggregate, state }`, that aggregate's current state. The
 * others are left out of the 409, so an actor never reads there what no route would show them.
 */
import { statesAt } from '../log/state.ts';
import type { LogCore } from '../log/log-core.ts';
import type { Conflict, Identity } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import type { Actor, Condition, ConditionContext } from './conditions.ts';
import type { ViewRoute } from './options.ts';

/** Whether `condition` opens for `context`: only a true answer does. */
export async function allowed(condition: Condition, context: ConditionContext): Promise<boolean> {
  return (await condition(Object.freeze(context))) === true;
}

/** The views that hold `aggregate` and allow `actor` to read it, with their states. */
export async function viewsShowing(views: ReadonlyMap<string, ViewRoute>, actor: Actor, aggregate: Identity): Promise<{ view: string; state: unknown }[]> {
  const shown: { view: string; state: unknown }[] = [];
  for (const [name, view] of views) {
    const state = await view.projection.get(aggregate);
    if (state !== undefined && (await allowed(view.allow, { actor, aggregate, state }))) shown.push({ view: name, state });
  }
  return shown;
}

/** The conflicts of a command that `actor` may see (see the rule above), in their order. */
export async function visibleConflicts(
  core: LogCore,
  views: ReadonlyMap<string, ViewRoute>,
  actor: Actor,
  route: { allow: Condition; command: unknown },
  conflicts: readonly Conflict[],
): Promise<Conflict[]> {
  const aggregates = new Map<string, Identity>();
  for (const { ours } of conflicts) if ('action' in ours) aggregates.set(identityKey(ours.action.aggregate), ours.action.aggregate);
  const list = [...aggregates.values()];
  const { states } = await statesAt(core, list);
  const visible = new Set<string>();
  for (const [i, aggregate] of list.entries()) {
    const byCommand = await allowed(route.allow, { actor, command: route.command, aggregate, state: states[i] });
    if (byCommand || (await viewsShowing(views, actor, aggregate)).length > 0) visible.add(identityKey(aggregate));
  }
  return conflicts.filter(({ ours }) => 'action' in ours && visible.has(identityKey(ours.action.aggregate)));
}
