/**
 * Where an append's time goes, in microseconds per event: not a target, a map for whoever works
 * on closing a gap. Each stage is run alone on the same workload, best of a few repetitions:
 *
 *   validate                 prepareEvents (the boundary checks and copies)
 *   encode                   encodeEvents (positional body, msgpack, record buffer)
 *   hash                     sealRecord over the batch (the SHA-256 chain)
 *   batch1000_txn_*          one write transaction per 1000 pre-encoded events, base = head (no
 *                            conflict check): coherence's decision and the LMDB engine's writes
 *                            vs the raw puts
 *   single_txn_*             the same for single-event appends whose base is behind the head (the
 *                            conflict check runs), 1000 of them per transaction, as lmdb-js runs
 *                            1000 concurrent `append`s
 *   single_check_*           the reads the single-event path makes in a write transaction, alone:
 *                            the head (a reverse cursor), the two conflict range scans, the
 *                            previous record (for the hash chain)
 */
import { decideAppend, encodeEvents, writeRequest, type EncodedEvent } from '../src/log/append.ts';
import { GENESIS_HASH, sealRecord } from '../src/log/record.ts';
import type { Storage } from '../src/storage/engine.ts';
import { indexedSeqs, lastSeq, type Store } from '../src/storage/lmdb/layout.ts';
import { lmdbEngine } from '../src/storage/lmdb/lmdb-engine.ts';
import { prepareAppendOptions, prepareEvents } from '../src/model/validate.ts';
import type { NewAction } from '../src/index.ts';
import {
  chunk, closeRawStore, emit, FIXED_TIME, makeActions, note, now, openRawStore, preEncode, rawPut, round, type Bench, type RawWrite,
} from './support.ts';

const MAX_EVENT_BYTES = 1024 * 1024;
const REPEAT = 3;

/** Best time of `REPEAT` runs of `f`, in µs per event. */
function best(events: number, f: () => void): number {
  let fastest = Infinity;
  for (let r = 0; r < REPEAT; r++) {
    const started = now();
    f();
    fastest = Math.min(fastest, now() - started);
  }
  return (fastest * 1000) / events;
}

async function bestAsync(events: number, f: () => Promise<void>): Promise<number> {
  let fastest = Infinity;
  for (let r = 0; r < REPEAT; r++) {
    const started = now();
    await f();
    fastest = Math.min(fastest, now() - started);
  }
  return (fastest * 1000) / events;
}

function encodeAll(actions: readonly NewAction[][]): EncodedEvent[][] {
  return actions.map((batch) => encodeEvents(prepareEvents(batch, FIXED_TIME.getTime()), MAX_EVENT_BYTES));
}

/** A fresh store holding `seed`, through raw LMDB; returns its directory and head. */
async function seeded(context: Parameters<Bench['run']>[0], seed: readonly RawWrite[][]): Promise<{ dir: string; head: number }> {
  const dir = context.tempDir();
  const store = openRawStore(dir);
  let seq = 0;
  for (const batch of seed) store.root.transactionSync(() => { for (const write of batch) rawPut(store, ++seq, write); });
  await closeRawStore(store);
  return { dir, head: seq };
}

/** Times `f(store)` on a fresh raw store that already holds `seed`, REPEAT times, in µs/event. */
async function onFreshStore(context: Parameters<Bench['run']>[0], seed: readonly RawWrite[][], events: number, f: (store: Store, head: number) => Promise<void>): Promise<number> {
  let fastest = Infinity;
  for (let r = 0; r < REPEAT; r++) {
    const { dir, head } = await seeded(context, seed);
    const store = openRawStore(dir);
    const started = now();
    await f(store, head);
    fastest = Math.min(fastest, now() - started);
    await closeRawStore(store);
    context.remove(dir);
  }
  return (fastest * 1000) / events;
}

/** The same through the LMDB engine's connection, as the log writes. */
async function onFreshStorage(context: Parameters<Bench['run']>[0], seed: readonly RawWrite[][], events: number, f: (storage: Storage, head: number) => Promise<void>): Promise<number> {
  let fastest = Infinity;
  for (let r = 0; r < REPEAT; r++) {
    const { dir, head } = await seeded(context, seed);
    const storage = await lmdbEngine(dir).open();
    const started = now();
    await f(storage, head);
    fastest = Math.min(fastest, now() - started);
    await storage.close();
    context.remove(dir);
  }
  return (fastest * 1000) / events;
}

/** One append of a pre-encoded batch as the log makes it: its decision inside the engine's write. */
function appendEncoded(storage: Storage, batch: readonly EncodedEvent[], base: number) {
  const options = prepareAppendOptions({ base });
  return storage.write(writeRequest(batch, base), (view) => decideAppend(view, batch, options));
}

export const appendStages: Bench = {
  name: 'append-stages',
  description: 'where an append spends its time, per stage (µs per event)',
  async run(context) {
    const count = context.scaled(30_000, 5_000);
    const size = 1000;
    const actions = makeActions(count);
    const batches = chunk(actions, size);
    const { writes } = preEncode(actions);
    const rawBatches = chunk(writes, size);
    note(`append-stages: ${count} events`);

    // Warm every code path once.
    encodeAll(batches.slice(0, 5));

    const validate = best(count, () => { for (const batch of batches) prepareEvents(batch, FIXED_TIME.getTime()); });
    const prepared = batches.map((batch) => prepareEvents(batch, FIXED_TIME.getTime()));
    const encode = best(count, () => { for (const batch of prepared) encodeEvents(batch, MAX_EVENT_BYTES); });
    const encoded = encodeAll(batches);
    const hash = best(count, () => {
      let previous: Uint8Array = GENESIS_HASH;
      for (const batch of encoded) for (const event of batch) previous = sealRecord(event.record, previous);
    });

    // Batches of 1000 on an empty store, base = head. (Records are sealed again on each run.)
    const txnCoherence = await onFreshStorage(context, [], count, async (storage) => {
      let head = 0;
      for (const batch of encoded) {
        await appendEncoded(storage, batch, head);
        head += batch.length;
      }
    });
    const txnRaw = await onFreshStore(context, [], count, async (store) => {
      let seq = 0;
      for (const batch of rawBatches) await store.root.transaction(() => { for (const write of batch) rawPut(store, ++seq, write); });
    });

    // Single-event appends with an old base on a store holding the first half: 1000 per transaction.
    const half = rawBatches.length >> 1;
    const seed = rawBatches.slice(0, half);
    const singles = actions.slice(half * size).map((action) => [action]);
    const singleCount = singles.length;
    const encodedSingles = encodeAll(singles);
    const singleCoherence = await onFreshStorage(context, seed, singleCount, async (storage, head) => {
      // Each group of 1000 touches every aggregate once; its base is the head before it, so all
      // but the first append of a group run the conflict check, and none conflicts. Issued
      // together, the appends of a group share one transaction, as lmdb-js runs them.
      let base = head;
      for (const group of chunk(encodedSingles, 1000)) {
        await Promise.all(group.map((batch) => appendEncoded(storage, batch, base)));
        base += group.length;
      }
    });
    const singleRaw = await onFreshStore(context, seed, singleCount, async (store, head) => {
      let seq = head;
      for (const group of chunk(writes.slice(half * size), 1000)) {
        await store.root.transaction(() => { for (const write of group) rawPut(store, ++seq, write); });
      }
    });
    // The reads of the single-event path, alone, inside a write transaction on the seeded store.
    const checks = { head: 0, scans: 0, previous: 0 };
    {
      const dir = context.tempDir();
      const store = openRawStore(dir);
      let seq = 0;
      for (const batch of seed) store.root.transactionSync(() => { for (const write of batch) rawPut(store, ++seq, write); });
      const probes = 5000;
      const base = seq;
      const aggregates = makeActions(probes).map((a) => a.action.aggregate);
      await store.root.transaction(() => {
        checks.head = best(probes, () => { for (let i = 0; i < probes; i++) lastSeq(store); });
        checks.scans = best(probes, () => {
          for (const aggregate of aggregates) {
            for (const _ of indexedSeqs(store.byAggregate, aggregate, base + 1));
            for (const _ of indexedSeqs(store.effectsByAggregate, aggregate, base + 1));
          }
        });
        checks.previous = best(probes, () => { for (let i = 0; i < probes; i++) store.events.getBinary(seq); });
      });
      await closeRawStore(store);
      context.remove(dir);
    }

    emit({
      bench: 'append-stages',
      events: count,
      unit: 'us/event',
      validate: round(validate, 2),
      encode: round(encode, 2),
      hash: round(hash, 2),
      batch1000_txn_coherence: round(txnCoherence, 2),
      batch1000_txn_raw: round(txnRaw, 2),
      batch1000_cpu_outside_txn: round(validate + encode, 2),
      single_txn_coherence: round(singleCoherence, 2),
      single_txn_raw: round(singleRaw, 2),
      single_check_head: round(checks.head, 2),
      single_check_conflict_scans: round(checks.scans, 2),
      single_check_previous_record: round(checks.previous, 2),
    });
  },
};
