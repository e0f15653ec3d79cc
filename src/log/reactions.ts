/**
 * Where the reactive parts (process managers and notifiers, in commands/) keep their
 * bookkeeping, so that `stats()` (api/) can report them without knowing more:
 *
 * - A process manager `name` is the consumer `$process:<name>`, whose record is
 *   `{ position }` (msgpack); its instances' states are in the log, on the aggregates
 *   `['$process', '<name>:<instance>']`, and its rejections on `['$process', '<name>']`, one
 *   action per rejected command.
 * - A notifier `name` is the consumer `$notifier:<name>`, whose record is
 *   `{ position, deadLetters, revision }` (msgpack) and whose states are its open events (see
 *   commands/notifier.ts).
 *
 * Every consumer whose name starts with `$` is coherence's own: not a projection.
 */
import type { Id, Identity } from '../model/types.ts';

/** The kind of the aggregates process managers keep their states and rejections in. */
export const PROCESS_KIND = '$process';
/** Consumer names of process managers start with this. */
export const PROCESS_CONSUMER = '$process:';
/** Consumer names of notifiers start with this. */
export const NOTIFIER_CONSUMER = '$notifier:';

/** The aggregate that holds the state of one instance of a process manager. */
export function instanceAggregate(name: string, instance: Id): Identity {
  return [PROCESS_KIND, `${name}:${instance}`];
}

/** The aggregate that records the rejections of a process manager's commands. */
export function rejectionsAggregate(name: string): Identity {
  return [PROCESS_KIND, name];
}

/** What a reaction consumer's record holds that `stats()` reports. */
export interface ReactionRecord {
  position: number;
  /** Notifiers: dead letters now. */
  deadLetters?: number;
}
