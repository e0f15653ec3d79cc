/**
 * stats(): what a store holds, from its indexes, without reading the events.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Key } from 'lmdb';
import { packr } from './record.ts';
import { lastSeq, MAX_SEQ, type Store } from './store.ts';

/** What `log.stats()` reports. */
export interface LogStats {
  /** The head: events in the log. */
  events: number;
  /** Aggregates with at least one action. */
  aggregates: number;
  keys: { live: number; destroyed: number };
  /** Size of the store's data file, in bytes (free pages included until `compact()`). */
  bytes: number;
  /** Every projection stored in this log, with its position and how far it lags the head. */
  projections: { name: string; position: number; lag: number }[];
}

/** Counts distinct aggregates by jumping from one to the next in the index: O(aggregates log n). */
function countAggregates(store: Store): number {
  let count = 0;
  let start: Key | undefined;
  for (;;) {
    let next: Key | undefined;
    for (const key of store.byAggregate.getKeys(start === undefined ? { limit: 1 } : { start, limit: 1, exclusiveStart: true })) next = key;
    if (next === undefined) return count;
    const [kind, id] = next as [string, string | number];
    count++;
    start = [kind, id, MAX_SEQ];
  }
}

export function storeStats(store: Store, path: string): LogStats {
  const head = lastSeq(store);
  const keys = { live: 0, destroyed: 0 };
  for (const value of store.keys.getRange().map(({ value }) => value)) {
    const destroyedAt = (packr.unpack(value) as unknown[])[2];
    if (destroyedAt === null) keys.live++;
    else keys.destroyed++;
  }
  const projections: LogStats['projections'] = [];
  let start: Key = [];
  for (;;) {
    let meta: { key: Key; value: Buffer } | undefined;
    for (const entry of store.projections.getRange({ start, limit: 1 })) meta = entry;
    if (meta === undefined) break;
    const [name, type] = meta.key as [string, number];
    if (type === 0) {
      const { position } = packr.unpack(meta.value) as { position: number };
      projections.push({ name, position, lag: Math.max(0, head - position) });
    }
    start = [name, 2];
  }
  return { events: head, aggregates: countAggregates(store), keys, bytes: statSync(join(path, 'data.mdb')).size, projections };
}
