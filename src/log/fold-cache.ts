/**
 * The folds this log has computed of aggregates that hold no plaintext under a key, each with the
 * head it was folded at, so that the next fold of the same aggregate at a later head starts from
 * there and reads only the aggregate's actions after that head. Sound because a stored action
 * never changes and what it shows can change only where a key is destroyed or expires, which
 * these folds hold nothing of (a value whose key was gone is redacted in them for good). Folds
 * with values decrypted under a key are never held: checking their keys would be needed on every
 * read, and a shred in another process must not leave their plaintext in this one's memory for
 * as long as the aggregate goes unread. A fold is held and handed out as copies of its objects
 * and arrays, so what a caller does to the state it got changes nothing here. Bounded: past
 * {@link FOLD_CACHE_LIMIT} folds it starts again empty.
 */
import type { Identity } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';

/** Folds held at most by one log. */
export const FOLD_CACHE_LIMIT = 4096;

/** A fold of an aggregate with no plaintext under a key, and the head it was folded at. */
export interface HeldFold {
  readonly at: number;
  readonly state: unknown;
  readonly exists: boolean;
  /** Actions folded into it after the aggregate's latest snapshot (or its start): when to take the next. */
  readonly pastSnapshot: number;
}

/** The held folds of one open log. */
export class FoldCache {
  readonly #limit: number;
  readonly #folds = new Map<string, HeldFold>();

  /** `limit`: folds held at most (tests use small ones). */
  constructor(limit = FOLD_CACHE_LIMIT) {
    this.#limit = limit;
  }

  /** The fold of `aggregate` held for a head at or before `head`, if any. */
  before(aggregate: Identity, head: number): HeldFold | undefined {
    const held = this.#folds.get(identityKey(aggregate));
    return held !== undefined && held.at <= head ? held : undefined;
  }

  /** Holds `fold` of `aggregate` (a copy of its state), unless one at a later head is held already. */
  hold(aggregate: Identity, fold: HeldFold): void {
    const id = identityKey(aggregate);
    const held = this.#folds.get(id);
    if (held !== undefined && held.at >= fold.at) return;
    if (held === undefined && this.#folds.size >= this.#limit) this.#folds.clear();
    this.#folds.set(id, { ...fold, state: copyOf(fold.state) });
  }

  /** Lets go of the fold of `aggregate` (an action after it decrypted a value). */
  drop(aggregate: Identity): void {
    this.#folds.delete(identityKey(aggregate));
  }

  clear(): void {
    this.#folds.clear();
  }
}

/**
 * A copy of a state's plain objects and arrays, all the way down; other values (strings,
 * numbers, what a `redact` function returned that is neither) are shared. The default fold
 * makes states of JSON values, so this is a deep copy of them.
 * @example
 * const mine = copyOf(held.state);
 */
export function copyOf<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyOf) as T;
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const member = copyOf((value as Record<string, unknown>)[key]);
    // An own "__proto__" stays a member (assigning it would set the copy's prototype).
    if (key === '__proto__') Object.defineProperty(copy, key, { value: member, enumerable: true, writable: true, configurable: true });
    else copy[key] = member;
  }
  return copy as T;
}
