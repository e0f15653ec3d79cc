/**
 * The stable codes carried by every {@link CoherenceError}.
 */
export type CoherenceErrorCode =
  | 'INVALID_EVENT'
  | 'INVALID_ARGUMENT'
  | 'LOG_CLOSED'
  | 'MISSING_MASTER_KEY'
  | 'WRONG_MASTER_KEY'
  | 'KEY_DESTROYED'
  | 'CORRUPT_LOG'
  | 'UNSUPPORTED_FORMAT'
  | 'STORE_IN_USE'
  | 'PROJECTION_FAILED'
  | 'UPCAST_FAILED'
  | 'REJECTED'
  | 'COMMAND_FAILED'
  | 'PROCESS_FAILED'
  | 'STORAGE_FAILED';

/**
 * Base class of every error coherence throws. Catch it to catch them all; switch on `code`,
 * which is stable across versions, rather than on the message.
 *
 * @example
 * try { await log.append(events, { base }); }
 * catch (e) { if (e instanceof CoherenceError && e.code === 'INVALID_EVENT') report(e.message); }
 */
export class CoherenceError extends Error {
  /** Stable machine-readable code. */
  readonly code: CoherenceErrorCode;

  constructor(code: CoherenceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An event of an `append` batch is malformed. Nothing was written.
 *
 * @example
 * // events[0].action.patch[0].path: expected a JSON Pointer starting with "/", got "a"
 * if (e instanceof InvalidEventError) console.error(e.index, e.path);
 */
export class InvalidEventError extends CoherenceError {
  /** Position of the offending event in the batch. */
  readonly index: number;
  /** Property path inside that event, such as `action.patch[0].path`. */
  readonly path: string;

  /**
   * @param options.list - what the message calls the batch, `events` unless given (the command
   *   service names the decider's intents: `decider "reserve": intents`).
   */
  constructor(index: number, path: string, expectation: string, options?: { cause?: unknown; list?: string }) {
    super('INVALID_EVENT', `${options?.list ?? 'events'}[${index}]${path === '' ? '' : '.'}${path}: ${expectation}`, options);
    this.index = index;
    this.path = path;
  }
}

/**
 * An argument other than the events of a batch is invalid (options, identities, seqs).
 *
 * @example
 * await log.append(events, { base: -1 }); // throws InvalidArgumentError: base: expected ...
 */
export class InvalidArgumentError extends CoherenceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/**
 * The log was used after `close()`.
 *
 * @example
 * await log.close(); await log.head(); // throws LogClosedError
 */
export class LogClosedError extends CoherenceError {
  constructor(message = 'the log is closed') {
    super('LOG_CLOSED', message);
  }
}

/**
 * Encryption or decryption was asked for, but the log was opened without a `masterKey`.
 *
 * @example
 * const log = await openLog({ path }); // no masterKey
 * await log.append([{ ...event, encrypt: { key: ['user', 'alice'] } }], { base: 0 }); // throws
 */
export class MissingMasterKeyError extends CoherenceError {
  constructor(message = 'this operation needs the log to be opened with a masterKey') {
    super('MISSING_MASTER_KEY', message);
  }
}

/**
 * The `masterKey` given to `openLog` is not the one the store's keys were wrapped with.
 *
 * @example
 * await openLog({ path, masterKey: otherKey }); // throws WrongMasterKeyError
 */
export class WrongMasterKeyError extends CoherenceError {
  constructor(message = 'the master key does not match the one this store was created with') {
    super('WRONG_MASTER_KEY', message);
  }
}

/**
 * A key that was shredded or expired was asked to encrypt again. Keys are never reused.
 *
 * @example
 * await log.keys.shred(['user', 'alice']);
 * await log.keys.create(['user', 'alice']); // throws KeyDestroyedError
 */
export class KeyDestroyedError extends CoherenceError {
  constructor(message: string) {
    super('KEY_DESTROYED', message);
  }
}

/**
 * The store's bytes are not what coherence wrote: a broken hash chain, an index that disagrees,
 * or ciphertext that fails authentication.
 *
 * @example
 * for await (const e of log.read()) {} // throws CorruptLogError on a tampered envelope
 */
export class CorruptLogError extends CoherenceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CORRUPT_LOG', message, options);
  }
}

/**
 * The store was written by a format version this build does not read.
 *
 * @example
 * await openLog({ path: storeFromTheFuture }); // throws UnsupportedFormatError
 */
export class UnsupportedFormatError extends CoherenceError {
  constructor(message: string) {
    super('UNSUPPORTED_FORMAT', message);
  }
}

/**
 * The operation needs the store to itself (`compact()`), but another process has it open.
 *
 * @example
 * try { await log.compact(); } catch (e) { if (e instanceof StoreInUseError) retryLater(); }
 */
export class StoreInUseError extends CoherenceError {
  constructor(message: string) {
    super('STORE_IN_USE', message);
  }
}

/**
 * A projection's `apply` or `init` threw, or returned a state that cannot be stored (a cycle, a
 * BigInt, a function, ...: see `path`). The projection stays as it was before the batch that holds
 * `seq`, states and position alike; the original error, or what is wrong with the state, is the
 * `cause`.
 *
 * @example
 * try { await receipts.catchUp(); } catch (e) { if (e instanceof ProjectionError) console.error(e.projection, e.seq, e.path, e.cause); }
 */
export class ProjectionError extends CoherenceError {
  /** The projection's name. */
  readonly projection: string;
  /** The event it failed at. */
  readonly seq: number;
  /**
   * Where in the state the value that cannot be stored is (`items[3].price`; `''`: the state
   * itself); undefined when `apply` or `init` threw.
   */
  readonly path: string | undefined;

  constructor(projection: string, seq: number, cause: unknown, path?: string) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const where = path === undefined ? '' : `the state it returned${path === '' ? '' : ` at ${path}`}: `;
    super('PROJECTION_FAILED', `projection "${projection}" failed at event ${seq}: ${where}${reason}`, { cause });
    this.projection = projection;
    this.seq = seq;
    this.path = path;
  }
}

/**
 * An upcaster of `openLog({ schemas })` threw, or returned something that is not an action of
 * the same aggregate, while lifting the action at `seq` to the current schema version. The
 * original error, if any, is the `cause`.
 *
 * @example
 * try { await log.state(['book', 'N']); } catch (e) { if (e instanceof UpcastError) console.error(e.kind, e.seq, e.cause); }
 */
export class UpcastError extends CoherenceError {
  /** The aggregate kind whose upcaster failed. */
  readonly kind: string;
  /** The event being lifted. */
  readonly seq: number;

  constructor(kind: string, seq: number, problem: string, cause?: unknown) {
    super('UPCAST_FAILED', `event ${seq}: the upcaster of "${kind}" ${problem}`, cause === undefined ? undefined : { cause });
    this.kind = kind;
    this.seq = seq;
  }
}

/**
 * Thrown by a decider's `decide` to refuse a command; the command service turns it into a
 * `rejected` result (nothing is written), so callers of `execute` never see it thrown.
 *
 * @example
 * decide(command, states) {
 *   const book = states.get(['book', command.isbn]) as { copies?: number };
 *   if ((book.copies ?? 0) === 0) throw new RejectedError('no-copies', { isbn: command.isbn });
 *   return [...];
 * }
 */
export class RejectedError extends CoherenceError {
  /** Why the command was refused: a short, stable word for programs (`'no-copies'`). */
  readonly reason: string;
  /** Anything the caller should know about the refusal (JSON-like, for clients). */
  readonly details: unknown;

  /** @throws InvalidArgumentError when `reason` is not a non-empty string. */
  constructor(reason: string, details?: unknown) {
    if (typeof reason !== 'string' || reason.length === 0) {
      throw new InvalidArgumentError(`reason: expected a non-empty string, got ${typeof reason === 'string' ? 'an empty string' : typeof reason}`);
    }
    super('REJECTED', `rejected: ${reason}`);
    this.reason = reason;
    this.details = details;
  }
}

/**
 * A decider failed with something other than a {@link RejectedError}: a bug in the decider (its
 * `aggregates` or `decide` threw, or `decide` returned something that is not a list of intents).
 * Nothing was written; the original error is the `cause`.
 *
 * @example
 * try { await commands.execute('reserve', command, { actor, source: 'web' }); }
 * catch (e) { if (e instanceof CommandError) console.error(e.decider, e.cause); }
 */
export class CommandError extends CoherenceError {
  /** The name of the decider that failed. */
  readonly decider: string;

  constructor(decider: string, cause: unknown, message?: string) {
    super('COMMAND_FAILED', `decider "${decider}" failed: ${message ?? (cause instanceof Error ? cause.message : String(cause))}`, { cause });
    this.decider = decider;
  }
}

/**
 * A process manager could not handle the event at `seq`: its `instance`, `init` or `react`
 * threw or returned something it cannot use, a command it emitted failed (a decider's bug: the
 * `CommandError` or `InvalidEventError` is the `cause`), or the commands conflicted on every
 * attempt of the command service's `retry`. Nothing of that event was written; the manager stays
 * before it, and the next `catchUp` (or the running `follow`) tries the event again.
 *
 * @example
 * try { await fulfilment.catchUp(); } catch (e) { if (e instanceof ProcessError) console.error(e.process, e.seq, e.cause); }
 */
export class ProcessError extends CoherenceError {
  /** The process manager's name. */
  readonly process: string;
  /** The event it could not handle. */
  readonly seq: number;

  constructor(process: string, seq: number, problem: string, cause?: unknown) {
    super('PROCESS_FAILED', `process manager "${process}" failed at event ${seq}: ${problem}`, cause === undefined ? undefined : { cause });
    this.process = process;
    this.seq = seq;
  }
}

/**
 * The store could not do what was asked: its driver is not installed, the database cannot be
 * reached, or it refused the operation (a hot standby refuses writes). The driver's error, when
 * there is one, is the `cause`. Whatever the operation was, it did not take effect, except when
 * the connection dropped during a commit, where (as with any database) the outcome is unknown:
 * retry an append with an `idempotencyKey` to be safe.
 *
 * @example
 * try { await log.append(events, { base }); }
 * catch (e) { if (e instanceof StorageError) console.error('database trouble:', e.message, e.cause); }
 */
export class StorageError extends CoherenceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORAGE_FAILED', message, options);
  }
}
