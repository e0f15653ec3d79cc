/**
 * Upcasting: actions stored under an older schema version of their kind, lifted to the current
 * one for every reader but `raw` reads and `verify` (stored bytes never change).
 */
import { UnsupportedFormatError, UpcastError } from '../errors.ts';
import { versionOf, type Schemas } from '../model/schemas.ts';
import type { Action, ActionEvent } from '../model/types.ts';
import { isPlainObject, sameIdentity } from '../model/validate.ts';

/**
 * The event with its action lifted from `stored` to the current version of its kind.
 * @throws UnsupportedFormatError when `stored` is newer than this reader's schema.
 * @throws UpcastError when an upcaster throws or returns no action of the same aggregate.
 */
export function upcast(event: ActionEvent, stored: number, schemas: Schemas): ActionEvent {
  const kind = event.action.aggregate[0];
  const current = versionOf(schemas, kind);
  if (stored === current) return event;
  if (stored > current) {
    throw new UnsupportedFormatError(`event ${event.seq}: its action is of version ${stored} of kind "${kind}", newer than this reader's ${current}; open the log with the schemas that wrote it`);
  }
  const upcasters = schemas.get(kind)?.upcasters ?? [];
  let action: Action = event.action;
  for (let version = stored; version < current; version++) {
    const lift = upcasters[version - 1] as (action: Action) => Action;
    let lifted: unknown;
    try {
      lifted = lift(action);
    } catch (cause) {
      throw new UpcastError(kind, event.seq, `from version ${version} threw`, cause);
    }
    if (!isPlainObject(lifted) || typeof lifted.reason !== 'string' || !Array.isArray(lifted.patch) || !Array.isArray(lifted.actor) || lifted.actor.length !== 2) {
      throw new UpcastError(kind, event.seq, `from version ${version} returned no action { reason, actor, aggregate, patch }`);
    }
    if (!sameIdentity(lifted.aggregate, event.action.aggregate)) {
      throw new UpcastError(kind, event.seq, `from version ${version} changed the aggregate; an upcaster lifts an action, it does not move it`);
    }
    action = lifted as unknown as Action;
  }
  return { ...event, action };
}
