/**
 * coherence on PostgreSQL, side by side in the same run with Emmett's PostgreSQL event store
 * (`@event-driven-io/emmett-postgresql`, the peer of bench/peers/, installed there on demand) and
 * with coherence on LMDB, round by round, alternating which goes first:
 *
 *   postgres-concurrent  waves of 100 concurrent single-event appends, each with a base (the
 *                        highest seq the wave before returned) and a conflict check on an
 *                        aggregate with history; Emmett: 100 concurrent appendToStream calls of
 *                        one event, each with the stream's expected version
 *   postgres-batch100    appends of 100 events awaited one after the other, each based on the
 *                        seq the one before returned;
 *                        Emmett: appendToStream of 100 events with the expected version
 *
 * The events are the standard workload (support.ts); Emmett stores the same action as its
 * event's data. Each store has a database of its own on one server: COHERENCE_BENCH_POSTGRES_URL,
 * or a throw-away one started with .ci/postgres (stock settings, fsync on) for the run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openLog } from '../src/index.ts';
import { postgresEngine } from '../src/storage/postgres/index.ts';
import { EmmettWriter, interleave, loadPeer, ROOT, streamOf, timed, Writer, type EmmettStore } from './peer-support.ts';
import { emit, fixedClock, makeActions, note, openBenchLog, round, type Bench, type BenchContext } from './support.ts';

const CONCURRENCY = 100;
const WAVES = 10;
const BATCH = 100;
const CALLS = 20;
const CONCURRENT_TARGET = 2;
const BATCH_TARGET = 1.5;

type PostgresStore = EmmettStore & { close(): Promise<void> };

/** Emmett's PostgreSQL event store, from bench/peers/ (not the library's package.json). */
async function loadEmmett(): Promise<(connectionString: string) => PostgresStore> {
  type Factory = (url: string) => PostgresStore;
  const module = await loadPeer<{ getPostgreSQLEventStore?: Factory; default?: { getPostgreSQLEventStore: Factory } }>('@event-driven-io/emmett-postgresql');
  const factory = module.getPostgreSQLEventStore ?? module.default?.getPostgreSQLEventStore;
  if (factory === undefined) throw new Error('bench: @event-driven-io/emmett-postgresql has no getPostgreSQLEventStore');
  return factory;
}

interface Server {
  url: string;
  stop(): void;
}

/** The server of COHERENCE_BENCH_POSTGRES_URL, or a throw-away one for this run. */
function startServer(): Server {
  const given = process.env.COHERENCE_BENCH_POSTGRES_URL;
  if (given !== undefined) return { url: given, stop: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'coherence-bench-pg-'));
  note(`starting a throw-away PostgreSQL in ${dir}`);
  const script = join(ROOT, '.ci', 'postgres');
  const out = execFileSync(script, ['start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const url = /COHERENCE_TEST_POSTGRES_URL=(\S+)/.exec(out)?.[1];
  if (url === undefined) throw new Error(`bench: .ci/postgres start printed no URL: ${out}`);
  return { url, stop: () => execFileSync(script, ['stop', dir], { stdio: 'ignore' }) };
}

/** A fresh database on the server, dropped by the returned function. */
async function freshDatabase(serverUrl: string, name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name}`);
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

type Round = (kind: 'postgres' | 'emmett' | 'lmdb', r: number) => Promise<number>;

/** Runs `rounds` (after one warm-up) of the three, rotating which goes first; emits the line. */
async function compare(name: string, rounds: number, run: Round, extra: Record<string, unknown>, target: number): Promise<void> {
  const { medians, ratio } = await interleave(['postgres', 'emmett', 'lmdb'] as const, rounds, run, 'postgres', 'emmett');
  emit({
    bench: name,
    ...extra,
    rounds,
    coherence_postgres_per_s: round(medians.postgres),
    emmett_postgres_per_s: round(medians.emmett),
    coherence_lmdb_per_s: round(medians.lmdb),
    ratio: round(ratio, 2),
    target: `>=${target}x Emmett on PostgreSQL`,
    met: ratio >= target,
  });
}

async function runAll(context: BenchContext): Promise<void> {
  const rounds = context.scaled(6, 3);
  let server: Server;
  try {
    server = startServer();
  } catch (error) {
    // No server and none can be started here (no PostgreSQL 15 and no root to install it).
    note(`postgres: skipped, no server: ${error instanceof Error ? error.message : String(error)}`);
    emit({ bench: 'postgres', skipped: 'no PostgreSQL server: set COHERENCE_BENCH_POSTGRES_URL or let .ci/postgres start one' });
    return;
  }
  const getEmmett = await loadEmmett().catch((error: unknown) => {
    server.stop();
    throw error;
  });
  const databases: { drop: () => Promise<void> }[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    const suffix = `${process.pid}_${Date.now()}`;
    const open = async (name: string) => {
      const database = await freshDatabase(server.url, `${name}_${suffix}`);
      databases.push(database);
      return database.url;
    };
    const postgres = await openLog({ engine: postgresEngine({ connectionString: await open('coherence_bench') }), clock: fixedClock });
    closers.push(() => postgres.close());
    const emmettStore = getEmmett(await open('emmett_bench'));
    closers.push(() => emmettStore.close());
    const emmett = new EmmettWriter(emmettStore);
    const lmdbDir = context.tempDir();
    const lmdb = await openBenchLog(lmdbDir);
    closers.push(() => lmdb.close());
    const logs = { postgres: new Writer(postgres), lmdb: new Writer(lmdb) };

    // Concurrent: round r, wave w appends to 100 aggregates (of 1000) none of the wave shares.
    const perRound = CONCURRENCY * WAVES;
    const concurrent = makeActions((rounds + 1) * perRound);
    note(`postgres-concurrent: 1 warm-up and ${rounds} rounds of ${WAVES} waves of ${CONCURRENCY} concurrent appends`);
    await compare('postgres-concurrent', rounds, (kind, r) => timed(perRound, async () => {
      for (let w = 0; w < WAVES; w++) {
        const wave = concurrent.slice(r * perRound + w * CONCURRENCY, r * perRound + (w + 1) * CONCURRENCY);
        if (kind === 'emmett') await Promise.all(wave.map((event) => emmett.append(streamOf(event), [event])));
        else await logs[kind].wave(wave);
      }
    }), { concurrency: CONCURRENCY, events: rounds * perRound }, CONCURRENT_TARGET);

    // Batches: round r appends CALLS calls of 100 events, one call after the other.
    const batchEvents = BATCH * CALLS;
    const batches = makeActions((rounds + 1) * batchEvents, { prefix: 'batch' });
    note(`postgres-batch100: 1 warm-up and ${rounds} rounds of ${CALLS} calls of ${BATCH} events`);
    await compare('postgres-batch100', rounds, (kind, r) => timed(batchEvents, async () => {
      for (let c = 0; c < CALLS; c++) {
        const events = batches.slice(r * batchEvents + c * BATCH, r * batchEvents + (c + 1) * BATCH);
        if (kind === 'emmett') await emmett.append(`batch-${c % 10}`, events);
        else await logs[kind].batch(events);
      }
    }), { events_per_call: BATCH, events: rounds * batchEvents }, BATCH_TARGET);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {});
    for (const database of databases) await database.drop().catch(() => {});
    server.stop();
  }
}

export const postgres: Bench = {
  name: 'postgres',
  description: 'coherence on PostgreSQL beside Emmett on PostgreSQL and coherence on LMDB: 100 concurrent single appends, 100 events per call',
  run: runAll,
};
