/**
 * What the side-by-side benchmarks with Emmett share (bench/postgres.ts, bench/emmett-sqlite.ts):
 * loading a peer from bench/peers/ (its own package.json and lockfile, installed there on demand
 * with `npm ci`, so the library's `npm ci` never sees it), Emmett's events for the standard
 * workload, a writer on each side that keeps its base or expected versions as a careful caller
 * does, and the interleaved rounds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Log, NewAction } from '../src/index.ts';
import { assertOk, median, note, now } from './support.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEERS = join(ROOT, 'bench', 'peers');
const requirePeer = createRequire(join(PEERS, 'package.json'));

function npm(args: readonly string[]): void {
  execFileSync('npm', [...args, '--no-audit', '--no-fund'], { cwd: PEERS, stdio: ['ignore', process.stderr, process.stderr] });
}

/** Installs bench/peers/ (`npm ci`) unless every dependency it declares is there already. */
function installPeers(): void {
  const manifest = JSON.parse(readFileSync(join(PEERS, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  if (Object.keys(manifest.dependencies).every((name) => existsSync(join(PEERS, 'node_modules', name)))) return;
  note('installing the peers in bench/peers (npm ci)');
  npm(['ci']);
}

/**
 * The module `name` of bench/peers/, installed first if need be. `native` names a compiled
 * dependency it needs: when that fails to load (a build for another Node), `npm rebuild` it.
 */
export async function loadPeer<T>(name: string, native?: string): Promise<T> {
  installPeers();
  if (native !== undefined) {
    try {
      requirePeer(native);
    } catch {
      note(`${native} does not load; npm rebuild ${native} in bench/peers`);
      npm(['rebuild', native]);
      requirePeer(native);
    }
  }
  return (await import(pathToFileURL(requirePeer.resolve(name)).href)) as T;
}

/** What the benchmarks use of an Emmett event store (PostgreSQL and SQLite alike). */
export interface EmmettStore {
  appendToStream(stream: string, events: { type: string; data: unknown }[], options?: { expectedStreamVersion?: bigint | string }): Promise<{ nextExpectedStreamVersion: bigint }>;
}

const asEmmettEvent = (event: NewAction) => ({ type: 'BookEdited', data: { ...event.action, triggers: event.triggers } });

/** Emmett's stream for an action of the standard workload: one per aggregate. */
export const streamOf = (event: NewAction): string => `book-${event.action.aggregate[1]}`;

/** Emmett with the expected version of each stream it has written, as a careful caller keeps it. */
export class EmmettWriter {
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

/** A log with the highest seq its appends returned, its caller's base (as Emmett's caller keeps versions). */
export class Writer {
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

  /** One append of `events`, based on the seq the append before returned. */
  async batch(events: NewAction[]): Promise<void> {
    const result = await this.log.append(events, { base: this.base });
    assertOk(result, 'an append');
    if (result.status === 'ok') this.base = result.events.at(-1)?.seq ?? this.base;
  }
}

/** Events per second of one round of `work` over `count` events. */
export async function timed(count: number, work: () => Promise<void>): Promise<number> {
  const started = now();
  await work();
  return count / ((now() - started) / 1000);
}

/**
 * Runs one warm-up round and `rounds` rounds of every side in `sides`, the order rotating round
 * by round so the machine's other load lands on all alike. Returns each side's figures and the
 * median over rounds of `numerator`/`denominator` within a round.
 */
export async function interleave<K extends string>(
  sides: readonly K[], rounds: number, run: (side: K, r: number) => Promise<number>, numerator: K, denominator: K,
): Promise<{ figures: Record<K, number[]>; medians: Record<K, number>; ratio: number; ratios: number[] }> {
  const figures = Object.fromEntries(sides.map((side) => [side, [] as number[]])) as Record<K, number[]>;
  const ratios: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const within = {} as Record<K, number>;
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(r + k) % sides.length] as K;
      within[side] = await run(side, r);
    }
    if (r === 0) continue;
    for (const side of sides) figures[side].push(within[side]);
    ratios.push(within[numerator] / within[denominator]);
  }
  const medians = Object.fromEntries(sides.map((side) => [side, median(figures[side])])) as Record<K, number>;
  return { figures, medians, ratio: median(ratios), ratios };
}
