/**
 * coherence on LMDB side by side in the same run with Emmett's SQLite event store
 * (`@event-driven-io/emmett-sqlite`, a peer of bench/peers/, installed there on demand), both
 * durable: coherence commits with a sync (its default), Emmett on one singleton connection
 * (`connectionOptions: { singleton: true, connection: sqliteConnection({ fileName }) }`; with a
 * file name alone it opens a connection per operation) in WAL mode with `synchronous = FULL`,
 * set here and checked (emmett-sqlite sets WAL itself; FULL is SQLite's default), so every commit
 * syncs the WAL. Rounds alternate which side goes first; `ratio` is coherence/Emmett within a
 * round, the median over rounds.
 *
 *   emmett-sqlite-sequential  single-event appends, each awaited before the next: coherence
 *                             with the base its last append returned, Emmett with the stream's
 *                             expected version. Target >= 1.5x.
 *   emmett-sqlite-batch100    appends of 100 events, awaited one after the other (informative)
 *   emmett-sqlite-concurrent  waves of 100 single-event appends in flight, each based on the wave
 *                             before (informative). On its singleton connection Emmett counts
 *                             nested transactions, so the appends of a wave share one
 *                             BEGIN..COMMIT, committed when the last of them is done.
 *
 * The events are the standard workload (support.ts), one Emmett stream per aggregate; Emmett
 * stores the action as its event's data.
 */
import { join } from 'node:path';
import { EmmettWriter, interleave, loadPeer, streamOf, timed, Writer, type EmmettStore } from './peer-support.ts';
import { emit, makeActions, note, openBenchLog, round, type Bench, type BenchContext } from './support.ts';

const SEQUENTIAL_TARGET = 1.5;
const SEQUENTIAL = 1000;
const BATCH = 100;
const CALLS = 50;
const CONCURRENCY = 100;
const WAVES = 10;

interface SqliteConnection {
  close(): void;
  command(sql: string): Promise<unknown>;
  querySingle<T>(sql: string): Promise<T | null>;
}

interface EmmettSqlite {
  sqliteConnection(options: { fileName: string }): SqliteConnection;
  getSQLiteEventStore(options: { fileName: string; connectionOptions: { singleton: true; connection: SqliteConnection } }): EmmettStore;
}

/** Emmett's SQLite event store on `fileName`, one singleton connection, WAL, synchronous=FULL. */
async function openEmmett(fileName: string): Promise<{ store: EmmettStore; connection: SqliteConnection; settings: Record<string, unknown> }> {
  const module = await loadPeer<EmmettSqlite & { default?: EmmettSqlite }>('@event-driven-io/emmett-sqlite', 'sqlite3');
  const { sqliteConnection, getSQLiteEventStore } = module.default ?? module;
  const connection = sqliteConnection({ fileName });
  // Asked for here rather than left to the connection's own setup, which one run in many had
  // not finished when the check below read the mode (it found 'delete').
  await connection.command('PRAGMA journal_mode = WAL');
  await connection.command('PRAGMA synchronous = FULL');
  const journal = (await connection.querySingle<{ journal_mode: string }>('PRAGMA journal_mode'))?.journal_mode;
  const synchronous = (await connection.querySingle<{ synchronous: number }>('PRAGMA synchronous'))?.synchronous;
  // synchronous 2 is FULL: in WAL mode, the WAL is synced at every commit.
  if (journal !== 'wal' || synchronous !== 2) throw new Error(`bench: Emmett's SQLite runs with journal_mode ${journal}, synchronous ${synchronous}; expected wal, 2 (FULL)`);
  const store = getSQLiteEventStore({ fileName, connectionOptions: { singleton: true, connection } });
  return { store, connection, settings: { sqlite_journal_mode: journal, sqlite_synchronous: 'FULL' } };
}

type Side = 'coherence' | 'emmett';

async function runAll(context: BenchContext): Promise<void> {
  const rounds = context.scaled(8, 3);
  const sequential = context.scaled(SEQUENTIAL, 200);
  const emmettDir = context.tempDir('coherence-bench-emmett-sqlite-');
  const lmdbDir = context.tempDir();
  const emmett = await openEmmett(join(emmettDir, 'events.db'));
  const log = await openBenchLog(lmdbDir);
  try {
    const writers = { coherence: new Writer(log), emmett: new EmmettWriter(emmett.store) };

    /** One interleaved comparison of the two; emits its line. */
    const compare = async (name: string, events: number, run: (side: Side, r: number) => Promise<number>, extra: Record<string, unknown>, target?: number) => {
      const result = await interleave(['coherence', 'emmett'] as const, rounds, run, 'coherence', 'emmett');
      emit({
        bench: name,
        ...extra,
        rounds,
        events: rounds * events,
        coherence_lmdb_per_s: round(result.medians.coherence),
        emmett_sqlite_per_s: round(result.medians.emmett),
        ratio: round(result.ratio, 2),
        coherence_rounds: result.figures.coherence.map((x) => round(x)),
        emmett_rounds: result.figures.emmett.map((x) => round(x)),
        ...emmett.settings,
        ...(target === undefined ? {} : { target: `>=${target}x Emmett on SQLite (singleton connection, WAL, synchronous=FULL)`, met: result.ratio >= target }),
      });
    };

    // Sequential: round r appends `sequential` single events, one after the other.
    const singles = makeActions((rounds + 1) * sequential, { prefix: 'seq' });
    note(`emmett-sqlite-sequential: 1 warm-up and ${rounds} rounds of ${sequential} single appends, each awaited`);
    await compare('emmett-sqlite-sequential', sequential, (side, r) => timed(sequential, async () => {
      for (const event of singles.slice(r * sequential, (r + 1) * sequential)) {
        if (side === 'emmett') await writers.emmett.append(streamOf(event), [event]);
        else await writers.coherence.batch([event]);
      }
    }), { per_call: 1 }, SEQUENTIAL_TARGET);

    // Batches: round r appends CALLS calls of 100 events, one call after the other.
    const perRound = BATCH * CALLS;
    const batches = makeActions((rounds + 1) * perRound, { prefix: 'batch' });
    note(`emmett-sqlite-batch100: 1 warm-up and ${rounds} rounds of ${CALLS} calls of ${BATCH} events`);
    await compare('emmett-sqlite-batch100', perRound, (side, r) => timed(perRound, async () => {
      for (let c = 0; c < CALLS; c++) {
        const events = batches.slice(r * perRound + c * BATCH, r * perRound + (c + 1) * BATCH);
        if (side === 'emmett') await writers.emmett.append(`batch-${c % 10}`, events);
        else await writers.coherence.batch(events);
      }
    }), { per_call: BATCH });

    // In flight: round r, wave w appends to 100 aggregates (of 1000) none of the wave shares.
    const perWaves = CONCURRENCY * WAVES;
    const concurrent = makeActions((rounds + 1) * perWaves, { prefix: 'wave' });
    note(`emmett-sqlite-concurrent: 1 warm-up and ${rounds} rounds of ${WAVES} waves of ${CONCURRENCY} appends in flight`);
    await compare('emmett-sqlite-concurrent', perWaves, (side, r) => timed(perWaves, async () => {
      for (let w = 0; w < WAVES; w++) {
        const wave = concurrent.slice(r * perWaves + w * CONCURRENCY, r * perWaves + (w + 1) * CONCURRENCY);
        if (side === 'emmett') await Promise.all(wave.map((event) => writers.emmett.append(streamOf(event), [event])));
        else await writers.coherence.wave(wave);
      }
    }), { in_flight: CONCURRENCY });
  } finally {
    await log.close();
    emmett.connection.close();
  }
  context.remove(lmdbDir);
  context.remove(emmettDir);
}

export const emmettSqlite: Bench = {
  name: 'emmett-sqlite',
  description: 'coherence on LMDB beside Emmett on SQLite (singleton, WAL, FULL): sequential single appends, 100 per call, 100 in flight',
  run: runAll,
};
