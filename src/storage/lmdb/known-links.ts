/**
 * The trigger links a connection has seen committed, so that writing an action of an aggregate
 * to a trigger it is linked to already costs no lookup. Sound because a link, once committed, is
 * never removed (compaction copies it; no write deletes one). Looked up by the aggregate's kind,
 * then its id, then the triggers linked to it compared part by part: no string is built per
 * lookup. Bounded: at most {@link LIMIT} links, of identities whose parts are short; when full it
 * starts again empty (the links in use come back with one lookup each).
 */
import type { Id, Identity } from '../../model/types.ts';
import { includesIdentity } from '../../model/validate.ts';

/** Links held at most (a few MB). */
const LIMIT = 65_536;
/** Identity parts longer than this (in UTF-16 units) are not held. */
const MAX_PART_LENGTH = 64;

function short(identity: Identity): boolean {
  return identity[0].length <= MAX_PART_LENGTH && (typeof identity[1] === 'number' || identity[1].length <= MAX_PART_LENGTH);
}

/** The links of one connection. Only links whose transaction has committed go in. */
export class KnownLinks {
  readonly #limit: number;
  /** Aggregate kind → aggregate id → the triggers linked to it. */
  #links = new Map<string, Map<Id, Identity[]>>();
  #count = 0;

  /** `limit`: links held at most (tests use small ones). */
  constructor(limit = LIMIT) {
    this.#limit = limit;
  }

  /** Whether `aggregate` is linked to `trigger` in the store, as far as this connection has seen. */
  has(trigger: Identity, aggregate: Identity): boolean {
    const triggers = this.#links.get(aggregate[0])?.get(aggregate[1]);
    return triggers !== undefined && includesIdentity(triggers, trigger);
  }

  /** Notes links whose transaction has committed: `links` holds a trigger, then its aggregate, for each. */
  committed(links: readonly Identity[]): void {
    for (let i = 0; i + 1 < links.length; i += 2) {
      const trigger = links[i] as Identity;
      const aggregate = links[i + 1] as Identity;
      if (!short(trigger) || !short(aggregate) || this.has(trigger, aggregate)) continue;
      if (this.#count >= this.#limit) {
        this.#links = new Map();
        this.#count = 0;
      }
      // A copy: the identities given may be those of events handed to the caller.
      const held: Identity = [trigger[0], trigger[1]];
      let ids = this.#links.get(aggregate[0]);
      if (ids === undefined) this.#links.set(aggregate[0], (ids = new Map()));
      const triggers = ids.get(aggregate[1]);
      if (triggers === undefined) ids.set(aggregate[1], [held]);
      else triggers.push(held);
      this.#count++;
    }
  }
}
