/**
 * stats(): what a store holds, from its indexes and small tables, without reading the events.
 */
import { decodeKeyRecord } from '../crypto/key-record.ts';
import type { LogCore } from '../log/log-core.ts';
import { NOTIFIER_CONSUMER, PROCESS_CONSUMER, rejectionsAggregate, type ReactionRecord } from '../log/reactions.ts';
import { actionSeqs, MAX_SEQ } from '../log/read.ts';
import { packr } from '../model/msgpack.ts';
import type { EngineKind } from '../storage/engine.ts';

/** What `log.stats()` reports. */
export interface LogStats {
  /** Which engine holds the store. */
  engine: EngineKind;
  /** The head: events in the log. */
  events: number;
  /** Aggregates with at least one action. */
  aggregates: number;
  keys: { live: number; destroyed: number };
  /** Bytes the store takes (free pages included until `compact()`). */
  bytes: number;
  /** Every projection stored in this log, with its position and how far it lags the head. */
  projections: { name: string; position: number; lag: number }[];
  /** Every process manager that has run on this log: its position, lag, and the commands its deciders refused (recorded). */
  processManagers: { name: string; position: number; lag: number; rejections: number }[];
  /** Every notifier that has run on this log: its position, lag, and how many events are dead letters now. */
  notifiers: { name: string; position: number; lag: number; deadLetters: number }[];
}

export async function logStats(core: LogCore): Promise<LogStats> {
  core.assertOpen();
  const head = await core.storage.head();
  const keys = { live: 0, destroyed: 0 };
  for await (const { record } of core.storage.allKeys()) {
    if (decodeKeyRecord(record).destroyedAt === null) keys.live++;
    else keys.destroyed++;
  }
  const stats: Pick<LogStats, 'projections' | 'processManagers' | 'notifiers'> = { projections: [], processManagers: [], notifiers: [] };
  for (const { name, meta } of await core.storage.consumers()) {
    const { position, deadLetters } = packr.unpack(meta) as ReactionRecord;
    const lag = Math.max(0, head - position);
    if (name.startsWith(PROCESS_CONSUMER)) {
      const manager = name.slice(PROCESS_CONSUMER.length);
      // Rejections are in the log, one action each: counted from the aggregate index.
      const rejections = (await actionSeqs(core, rejectionsAggregate(manager), 1, MAX_SEQ)).length;
      stats.processManagers.push({ name: manager, position, lag, rejections });
    } else if (name.startsWith(NOTIFIER_CONSUMER)) {
      stats.notifiers.push({ name: name.slice(NOTIFIER_CONSUMER.length), position, lag, deadLetters: deadLetters ?? 0 });
    } else if (!name.startsWith('$')) {
      stats.projections.push({ name, position, lag });
    }
  }
  const { aggregates, bytes } = await core.storage.stats();
  return { engine: core.storage.kind, events: head, aggregates, keys, bytes, ...stats };
}
