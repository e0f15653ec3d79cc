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
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { openLog, type Log, type NewAction } from '../src/index.ts';
import { postgresEngine } from '../src/storage/postgres/index.ts';
import { assertOk, emit, fixedClock, makeActions, median, note, now, openBenchLog, round, type Bench, type BenchContext } from './support.ts';

const CONCURRENCY = 100;
const WAVES = 10;
const BATCH = 100;
const CALLS = 20;
const CONCURRENT_TARGET = 2;
const BATCH_TARGET = 1.5;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEERS = join(ROOT, 'bench', 'peers');

/** What the benchmark uses of Emmett's PostgreSQL event store. */
interface EmmettStore {
  appendToStream(stream: string, events: { type: string; data: unknown }[], options?: { expectedStreamVersion?: bigint | string }): Promise<{ nextExpectedStreamVersion: bigint }>;
  close(): Promise<void>;
}

/** Emmett, installed into bench/peers/ (not the library's package.json) the first time it is needed. */
async function loadEmmett(): Promise<(connectionString: string) => EmmettStore> {
  if (!existsSync(join(PEERS, 'node_modules', '@event-driven-io', 'emmett-postgresql'))) {
    note('installing the peers in bench/peers (npm ci)');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PEERS, stdio: ['ignore', process.stderr, process.stderr] });
  }
  const entry = createRequire(join(PEERS, 'package.json')).resolve('@event-driven-io/emmett-postgresql');
  const module = (await import(pathToFileURL(entry).href)) as { getPostgreSQLEventStore?: (url: string) => EmmettStore; default?: { getPostgreSQLEventStore: (url: string) => EmmettStore } };
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

const asEmmettEvent = (event: NewAction) => ({ type: 'BookEdited', data: { ...event.action, triggers: event.triggers } });
const streamOf = (event: NewAction) => `book-${event.action.aggregate[1]}`;

/** Emmett with the expected version of each stream it has written, as a careful caller keeps it. */
class EmmettWriter {
  readonly #store: EmmettStore;
  readonly #versions = new Map<string, bigint>();

  constructor(store: EmmettStore) {
    this.#store = store;
  }

  async append(stream: string, events: NewAction[]): Promise<void> {
    const expected = this.#versions.get(stream);
    const result = await this.#store.appendToStream(stream, events.map(asEmmettEvent), { expectedStreamVersion: expected ?? 'STREAM_DOES_NOT_EXIST' });
    this.#versions.set(stream, result.nextExpectedStreamVersion);
  }
}

/** Events per second of one round of `work` over `count` events. */
async function timed(count: number, work: () => Promise<void>): Promise<number> {
  const started = now();
  await work();
  return count / ((now() - started) / 1000);
}

/** A log with the highest seq its appends returned, its caller's base (as Emmett's caller keeps versions). */
class Writer {
  readonly log: Log;
  base = 0;

  constructor(log: Log) {
    this.log = log;
  }

  /** One append per event, all at once, each based on the seq the wave before left. */
  async wave(events: readonly NewAction[]): Promise<void> {
    const base = this.base;
    const results = await Promise.all(events.map((event) => this.log.append([event], { base })));
    for (const result of results) {
      assertOk(result, 'a concurrent append');
      if (result.status === 'ok') this.base = Math.max(this.base, result.events.at(-1)?.seq ?? 0);
    }
  }

  async batch(events: NewAction[]): Promise<void> {
    const result = await this.log.append(events, { base: this.base });
    assertOk(result, 'a batch append');
    if (result.status === 'ok') this.base = result.events.at(-1)?.seq ?? this.base;
  }
}

type Round = (kind: 'postgres' | 'emmett' | 'lmdb', r: number) => Promise<number>;

/** Runs `rounds` (after one warm-up) of the three, rotating which goes first; emits the line. */
async function compare(name: string, rounds: number, run: Round, extra: Record<string, unknown>, target: number): Promise<void> {
  const kinds = ['postgres', 'emmett', 'lmdb'] as const;
  const figures = { postgres: [] as number[], emmett: [] as number[], lmdb: [] as number[] };
  const ratios: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const within: Partial<Record<(typeof kinds)[number], number>> = {};
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(r + k) % kinds.length] as (typeof kinds)[number];
      within[kind] = await run(kind, r);
    }
    if (r === 0) continue;
    for (const kind of kinds) figures[kind].push(within[kind] as number);
    ratios.push((within.postgres as number) / (within.emmett as number));
  }
  const ratio = median(ratios);
  emit({
    bench: name,
    ...extra,
    rounds,
    coherence_postgres_per_s: round(median(figures.postgres)),
    emmett_postgres_per_s: round(median(figures.emmett)),
    coherence_lmdb_per_s: round(median(figures.lmdb)),
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
