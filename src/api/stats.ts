/**
 * stats(): what a store holds, from its indexes and small tables, without reading the events.
 */
import { decodeKeyRecord } from '../crypto/key-record.ts';
import type { LogCore } from '../log/log-core.ts';
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
}

export async function logStats(core: LogCore): Promise<LogStats> {
  core.assertOpen();
  const head = await core.storage.head();
  const keys = { live: 0, destroyed: 0 };
  for await (const { record } of core.storage.allKeys()) {
    if (decodeKeyRecord(record).destroyedAt === null) keys.live++;
    else keys.destroyed++;
  }
  const projections = (await core.storage.consumers()).map(({ name, meta }) => {
    const { position } = packr.unpack(meta) as { position: number };
    return { name, position, lag: Math.max(0, head - position) };
  });
  const { aggregates, bytes } = await core.storage.stats();
  return { engine: core.storage.kind, events: head, aggregates, keys, bytes, projections };
}
