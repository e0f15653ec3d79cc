import type { Operation } from 'fast-json-patch';

export type { Operation };

/** The id part of an {@link Identity}: a non-empty string or a safe integer. */
export type Id = string | number;

/**
 * What something is and which one: `['book', 'Neuromancer']`, `['user', 'alice']`.
 * Kinds and string ids are non-empty, at most 512 bytes of UTF-8 and contain no NUL character.
 */
export type Identity = readonly [kind: string, id: Id];

/** A change by an actor to an aggregate: a JSON Patch (RFC 6902) with a reason. */
export interface Action {
  reason: string;
  actor: Identity;
  aggregate: Identity;
  /**
   * Not empty. Members an operation does not define are ignored (RFC 6902 §4): they are dropped
   * at append and never stored.
   */
  patch: Operation[];
}

/** Something that happened to a trigger outside the log, such as a key being shredded. */
export interface Effect {
  reason: string;
  trigger: Identity;
}

/** A stored action. */
export interface ActionEvent {
  seq: number;
  timestamp: Date;
  source: string;
  action: Action;
  /** External resources this action depends on (encryption keys among them). */
  triggers: Identity[];
  /**
   * The stored events after its base that touched its aggregate and that its author named in
   * `resolved` (ascending); absent when there were none. How a conflict was settled stays in
   * the history.
   */
  resolved?: number[];
  /** Such events whose changes the `disjoint-paths` merge let it through (ascending); absent when none. */
  merged?: number[];
}

/** A stored effect: it affects every aggregate with an action linked to its trigger at or before it. */
export interface EffectEvent {
  seq: number;
  timestamp: Date;
  source: string;
  effect: Effect;
}

/** Any stored event. Tell them apart with `isActionEvent` or `'action' in event`. */
export type LogEvent = ActionEvent | EffectEvent;

/** An action to append. */
export interface NewAction {
  source: string;
  /** Defaults to the log's clock. */
  timestamp?: Date;
  action: Action;
  /** External resources this action depends on. No duplicates. */
  triggers?: Identity[];
  /** Encrypt the values at `paths` (every valued operation when omitted) with `key`. */
  encrypt?: { key: Identity; paths?: string[] };
}

/** An effect to append. */
export interface NewEffect {
  source: string;
  /** Defaults to the log's clock. */
  timestamp?: Date;
  effect: Effect;
}

/** Any event to append. */
export type NewEvent = NewAction | NewEffect;

/** How `append` treats action/action conflicts. */
export type MergeMode = 'none' | 'disjoint-paths';

/** Options of `append`. */
export interface AppendOptions {
  /** Highest seq the caller's view includes (0 = none). */
  base: number;
  /** Seqs after `base` the caller has seen and resolved. */
  resolved?: number[];
  /** Check and report, write nothing. */
  dryRun?: boolean;
  /** Default `'none'`. */
  merge?: MergeMode;
  /**
   * The batch takes effect at most once per store under this key (1 to 512 bytes of UTF-8): a
   * later append with the same key, from any process, even after a crash or while the first is
   * in flight, writes nothing and returns `duplicate` with the events the first one wrote. The
   * key is checked before the conflict check, so a retry of a batch that went through is never
   * a conflict.
   */
  idempotencyKey?: string;
}

/** One conflict: the event of the batch (with its tentative seq) and the stored event it ran into. */
export interface Conflict {
  ours: LogEvent;
  theirs: LogEvent;
}

/**
 * What `append` returns. Conflicts and invalid bases are results, not errors; `duplicate` comes
 * only with an `idempotencyKey` (see {@link AppendOutcome}).
 */
export type AppendResult =
  | { status: 'ok'; events: LogEvent[] }
  | { status: 'conflict'; accepted: LogEvent[]; conflicts: Conflict[] }
  | { status: 'invalid-base'; head: number }
  /** The batch's idempotency key was seen: nothing was written; the events it wrote then. */
  | { status: 'duplicate'; events: LogEvent[] };

/** What `append` returns without an `idempotencyKey`: every result but `duplicate`. */
export type AppendOutcome = Exclude<AppendResult, { status: 'duplicate' }>;

/** Options of `read`. */
export interface ReadOptions {
  /** First seq to yield. Default 1. */
  from?: number;
  /** Only actions on these aggregates, and effects affecting them. */
  aggregates?: Identity[];
  /** Only actions on aggregates of these kinds, and effects affecting such aggregates. */
  kinds?: string[];
  /**
   * Also yield every action before `from` on an aggregate affected by an effect at or after
   * `from`, so a reader starting at `from` can rebuild what the effect changed. Default true.
   */
  replay?: boolean;
  /** Yield stored envelopes instead of decrypting. Default false. */
  raw?: boolean;
}

/** Outcome of `verify`. */
export type VerifyResult = { ok: true; events: number } | { ok: false; seq: number; reason: string };
