import type {
  AppendOptions,
  AppendResult,
  Identity,
  LogEvent,
  NewEvent,
  ReadOptions,
  VerifyResult,
} from '../model/types.ts';

/**
 * Options of {@link openLog}.
 */
export interface OpenLogOptions {
  /** The store directory; created when missing. */
  path: string;
  /** 32 bytes, or 64 hex characters. Needed only to encrypt and decrypt. */
  masterKey?: Uint8Array | string;
  /** Largest encoded event, in bytes. Default 1 MiB. */
  maxEventBytes?: number;
  /** Where `timestamp` defaults come from; inject one in tests. Default `() => new Date()`. */
  clock?: () => Date;
}

/**
 * An open coherence log. Obtain one with {@link openLog}; several processes may have the same
 * store open at once, and every guarantee holds across them.
 */
export interface Log {
  /**
   * Appends a batch, all or nothing, if nothing stored after `options.base` (and not in
   * `options.resolved`) conflicts with it. An action conflicts with every later action on the
   * same aggregate and every later effect that affects that aggregate; every such conflict of
   * the batch is reported at once, with both sides, and nothing is written.
   *
   * @returns `ok` with the stored events and their seqs; `conflict` with every conflict and the
   *   events that raised none; `invalid-base` when `base` is beyond the head.
   * @throws InvalidEventError naming the event (`index`) and the place in it (`path`).
   * @throws InvalidArgumentError for bad options.
   * @throws LogClosedError after `close()`.
   * @example
   * const { head } = await log.state(['book', 'Neuromancer']);
   * const result = await log.append([{ source: 'web', action: {
   *   reason: 'restock', actor: ['user', 'alice'], aggregate: ['book', 'Neuromancer'],
   *   patch: [{ op: 'replace', path: '/stock', value: 5 }] } }], { base: head });
   * if (result.status === 'conflict') for (const c of result.conflicts) console.log(c.theirs);
   */
  append(events: NewEvent[], options: AppendOptions): Promise<AppendResult>;

  /**
   * The highest seq in the log, 0 when empty.
   * @throws LogClosedError after `close()`.
   * @example
   * const base = await log.head();
   */
  head(): Promise<number>;

  /**
   * The event at `seq`, or undefined when there is none.
   * @throws InvalidArgumentError when `seq` is not a positive integer.
   * @throws LogClosedError after `close()`.
   * @example
   * const first = await log.get(1);
   */
  get(seq: number): Promise<LogEvent | undefined>;

  /**
   * Streams events in ascending seq from `from`, filtered by aggregates and kinds, with the
   * actions an effect at or after `from` makes a reader replay (see {@link ReadOptions}).
   * Events are decoded one at a time: memory stays flat over any length of log.
   * @throws InvalidArgumentError for bad options.
   * @throws LogClosedError after `close()`.
   * @example
   * for await (const event of log.read({ from: 100, kinds: ['book'] })) console.log(event.seq);
   */
  read(options?: ReadOptions): AsyncIterable<LogEvent>;

  /**
   * What an append on `aggregate` based on `base` would conflict with, ascending.
   * @throws InvalidArgumentError for a bad base or identity.
   * @throws LogClosedError after `close()`.
   * @example
   * const theirs = await log.conflicts(base, ['book', 'Neuromancer']);
   */
  conflicts(base: number, aggregate: Identity): Promise<LogEvent[]>;

  /**
   * The aggregate's state, the fold of its actions' patches from `{}`, and the head it was read
   * at, which is the natural `base` of the caller's next append. A patch that cannot be applied
   * (a failing `test`, an unresolvable path) leaves the state as it was, as RFC 6902 asks.
   * @throws InvalidArgumentError for a bad identity.
   * @throws LogClosedError after `close()`.
   * @example
   * const { state, head } = await log.state(['book', 'Neuromancer']);
   */
  state(aggregate: Identity): Promise<{ state: unknown; head: number }>;

  /**
   * Checks the hash chain from the first event and that every index agrees with the events.
   * @returns `{ ok: true, events }`, or `{ ok: false, seq, reason }` naming the first bad seq.
   * @throws LogClosedError after `close()`.
   * @example
   * const result = await log.verify();
   * if (!result.ok) console.error(`corrupt at ${result.seq}: ${result.reason}`);
   */
  verify(): Promise<VerifyResult>;

  /**
   * Waits for pending appends, then closes the store. Later calls throw `LogClosedError`;
   * closing twice is harmless.
   * @example
   * await log.close();
   */
  close(): Promise<void>;
}
