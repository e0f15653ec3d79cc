import type { ActionEvent, Identity } from '../model/types.ts';

/** How a projection is defined. */
export interface ProjectionOptions<State> {
  /** Only aggregates of these kinds. */
  kinds?: string[];
  /** Only these aggregates. */
  aggregates?: Identity[];
  /** First seq a new projection reads. Default 1. */
  from?: number;
  /** The state of an aggregate before its first action. Default: `{}`. */
  init?: (aggregate: Identity) => State;
  /**
   * Folds one action into the state. Default: apply the action's JSON Patch (as a unit; a patch
   * that fails leaves the state as it was). Must be deterministic: effects make the projection
   * fold an aggregate's actions again. It may mutate `state`: it is the projection's own copy.
   */
  apply?: (state: State, event: ActionEvent) => State;
}

/** What one `catchUp` did. */
export interface CatchUpResult {
  /** First seq looked at. */
  from: number;
  /** The projection's position afterwards: every event up to it is in the states. */
  to: number;
  /** Actions applied. */
  actions: number;
  /** Actions applied again because an effect affected their aggregate. */
  replayed: number;
}

/**
 * A read model kept next to the log, in its store: one state per aggregate, and a position.
 * States hold values as readers see them, decrypted where keys live; a state folded from
 * encrypted values is stored sealed under their keys, so once one of them is destroyed it can be
 * opened no more: `get` and `entries` then fold that aggregate again with the keys as they are
 * now (redacted), and the next catch-up replaces it.
 * States and position change together, one transaction per batch of events, so a crash leaves
 * the projection at a consistent position and a restart neither skips nor repeats an event.
 * When the projection meets an effect, it folds every affected aggregate it holds again from
 * that aggregate's actions, decrypting with the keys as they are now: after a shred and a
 * catch-up, no state holds the shredded plaintext.
 */
export interface Projection<State> {
  /** The projection's name; its states and position are stored under it. */
  readonly name: string;

  /**
   * Applies every event after the position, up to the head, in batches. `onProgress` is called
   * after each batch with the position reached and the head being caught up to.
   * @throws ProjectionError when `apply` or `init` throws: the projection stays at the last
   *   completed batch, with the states it had then.
   * @throws InvalidArgumentError when the stored projection was built with other filters.
   * @example
   * const { actions, to } = await receipts.catchUp();
   */
  catchUp(options?: { onProgress?: (position: number, head: number) => void }): Promise<CatchUpResult>;

  /**
   * The state of one aggregate, or undefined when the projection holds none for it.
   * @throws InvalidArgumentError for a bad identity.
   * @example
   * const receipt = await receipts.get(['receipt', 7]);
   */
  get(aggregate: Identity): Promise<State | undefined>;

  /**
   * Every aggregate the projection holds with its state, by kind then id.
   * @example
   * for await (const [aggregate, state] of receipts.entries({ kind: 'receipt' })) console.log(aggregate, state);
   */
  entries(options?: { kind?: string }): AsyncIterable<[Identity, State]>;

  /**
   * The last seq the states include (`from - 1` before the first catch-up).
   * @example
   * const lag = (await log.head()) - (await receipts.position());
   */
  position(): Promise<number>;

  /**
   * Forgets every state and the position, then catches up from `from` (with progress as in
   * `catchUp`).
   * @example
   * await receipts.rebuild();
   */
  rebuild(options?: { onProgress?: (position: number, head: number) => void }): Promise<CatchUpResult>;

  /**
   * Catches up, then keeps up: at once after appends from this process, and within 100 ms
   * after appends from other processes (it watches the head, never re-reads the log).
   * `onCatchUp` hears of every catch-up that moved the position. Errors go to `onError`
   * (default: rethrown asynchronously, like an unhandled rejection) and following goes on.
   * @returns a function that stops following and resolves once the current catch-up is done.
   * @example
   * const stop = receipts.follow({ onError: console.error });
   * // ...
   * await stop();
   */
  follow(options?: { onError?: (error: unknown) => void; onCatchUp?: (result: CatchUpResult) => void }): () => Promise<void>;
}
