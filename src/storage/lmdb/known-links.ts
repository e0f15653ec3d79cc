/**
 * The trigger links a connection has seen committed, so that writing an action of an aggregate
 * to a trigger it is linked to already costs no lookup. Sound because a link, once committed, is
 * never removed (compaction copies it; no write deletes one). Bounded: two generations of at most
 * {@link GENERATION} links each, and only links of short identities; a link found in the older
 * generation moves to the newer, and when the newer fills, the older is dropped, so what is
 * written often stays.
 */
import type { Identity } from '../../model/types.ts';
import { identityKey } from '../../model/validate.ts';

/** Links per generation. */
const GENERATION = 32_768;
/** Links whose {@link linkId} is longer are not remembered (at most about 20 MB for both generations). */
const MAX_ID_LENGTH = 128;

/** A link as a string: two identity keys, each with exactly two NULs (identity parts hold none). */
export function linkId(trigger: Identity, aggregate: Identity): string {
  return `${identityKey(trigger)}\u0000${identityKey(aggregate)}`;
}

/** The links of one connection, by {@link linkId}. Only links whose transaction has committed go in. */
export class KnownLinks {
  readonly #generation: number;
  #newer = new Set<string>();
  #older = new Set<string>();

  /** `generation`: links per generation (tests use small ones). */
  constructor(generation = GENERATION) {
    this.#generation = generation;
  }

  /** Whether the link is committed, as far as this connection has seen. */
  has(id: string): boolean {
    if (this.#newer.has(id)) return true;
    if (!this.#older.has(id)) return false;
    this.#add(id);
    return true;
  }

  /** Notes links whose transaction has committed. */
  committed(ids: readonly string[]): void {
    for (const id of ids) if (id.length <= MAX_ID_LENGTH) this.#add(id);
  }

  #add(id: string): void {
    if (this.#newer.size >= this.#generation) {
      this.#older = this.#newer;
      this.#newer = new Set();
    }
    this.#newer.add(id);
  }
}
