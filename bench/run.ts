/**
 * `npm run bench [-- name ...] [-- --quick | --scale=0.2]`
 *
 * Runs the benchmarks (all by default, or those named) and prints one JSON line per result on
 * stdout; progress goes to stderr. Each benchmark runs its raw-LMDB baseline in the same run,
 * interleaved round by round with coherence (alternating which goes first), and reports
 * `ratio` as the median over rounds of coherence/raw within a round, so load from other users of
 * the machine cancels out as far as it can. `met` says whether the target of the issue is met.
 * At the end (also after a failure), a summary: a table on stderr with one row per result that
 * has a target (key figure, ratio, target, met), and a last JSON line `{"bench":"summary",...}`.
 *
 * Scale: BENCH_SCALE (default 1) or `--scale=x`, `--quick` = 0.1. At scale 1 the large store has
 * 1M events; at 0.1 it has 100k, which is enough to develop with but not the figures of the issue.
 */
import { appendBatch100, appendBatch1000 } from './append-batch.ts';
import { appendConcurrent } from './append-concurrent.ts';
import { appendDurable } from './append-durable.ts';
import { appendLatency, PROBES } from './append-latency.ts';
import { appendStages } from './append-stages.ts';
import { cliStartup } from './cli-startup.ts';
import { commandBenches } from './commands.ts';
import { emmettSqlite } from './emmett-sqlite.ts';
import { encryptedAppend } from './encrypted-append.ts';
import { httpBenches } from './http.ts';
import { encryptedRead } from './encrypted-read.ts';
import { projectionBenches } from './projection-catchup.ts';
import { open } from './open.ts';
import { postgres } from './postgres.ts';
import { reactionBenches } from './reactions.ts';
import { read } from './read.ts';
import { snapshots } from './snapshots.ts';
import { buildStore, emit, makeTempDir, note, printSummary, removeAllDirs, removeDir, type Bench, type BenchContext, type BuiltStore } from './support.ts';

const BENCHES: readonly Bench[] = [
  appendBatch1000,
  appendBatch100,
  appendConcurrent,
  appendDurable,
  appendStages,
  open,
  read,
  appendLatency,
  encryptedAppend,
  encryptedRead,
  ...projectionBenches,
  snapshots,
  cliStartup,
  ...commandBenches,
  ...reactionBenches,
  postgres,
  emmettSqlite,
  ...httpBenches,
];

/** A bad command line: reported as one line, exit code 2. */
class UsageError extends Error {}

function parseArgs(argv: readonly string[]): { names: string[]; scale: number } {
  let scale = process.env.BENCH_SCALE === undefined ? 1 : Number(process.env.BENCH_SCALE);
  const names: string[] = [];
  for (const arg of argv) {
    if (arg === '--quick') scale = 0.1;
    else if (arg.startsWith('--scale=')) scale = Number(arg.slice('--scale='.length));
    else if (arg === '--help' || arg === '-h') {
      process.stderr.write(`usage: npm run bench [-- [--quick|--scale=x] [name ...]]\nbenchmarks:\n${BENCHES.map((b) => `  ${b.name.padEnd(18)} ${b.description}`).join('\n')}\n`);
      process.exit(0);
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}; try --help`);
    else names.push(arg);
  }
  if (!Number.isFinite(scale) || scale <= 0) throw new UsageError(`expected a positive scale, got ${String(scale)}`);
  const known = new Set(BENCHES.map((b) => b.name));
  for (const name of names) if (!known.has(name)) throw new UsageError(`unknown benchmark ${name}; one of ${[...known].join(', ')}`);
  return { names, scale };
}

async function main(): Promise<void> {
  const { names, scale } = parseArgs(process.argv.slice(2));
  const selected = names.length === 0 ? BENCHES : BENCHES.filter((b) => names.includes(b.name));
  let big: Promise<BuiltStore> | undefined;
  const context: BenchContext = {
    scale,
    scaled: (n, min = 1) => Math.max(min, Math.round(n * scale)),
    bigStore: () => {
      big ??= (async () => {
        const events = Math.max(20_000, Math.round(1_000_000 * scale));
        note(`building the shared ${events}-event store`);
        const built = await buildStore(makeTempDir(), events, PROBES);
        note(`built in ${built.buildSeconds} s`);
        emit({ bench: 'setup-big-store', events: built.events, seconds: built.buildSeconds, events_per_s: Math.round(built.events / built.buildSeconds) });
        return built;
      })();
      return big;
    },
    tempDir: (prefix) => makeTempDir(prefix),
    remove: removeDir,
  };
  const started = performance.now();
  try {
    for (const bench of selected) {
      const benchStarted = performance.now();
      note(`${bench.name}: ${bench.description}`);
      await bench.run(context);
      note(`${bench.name}: ${Math.round((performance.now() - benchStarted) / 100) / 10} s`);
    }
  } finally {
    removeAllDirs();
    printSummary();
  }
  note(`done in ${Math.round((performance.now() - started) / 1000)} s (scale ${scale})`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    removeAllDirs();
    process.exit(130);
  });
}

main().catch((error: unknown) => {
  removeAllDirs();
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
