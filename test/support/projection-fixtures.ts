/**
 * Fixtures of the projection tests: appending that must succeed, reading a projection whole,
 * the by-hand fold that is their oracle, and child processes that act on a store from outside.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';
import jsonPatch from 'fast-json-patch';
import { expect } from 'vitest';
import type { Identity, Log, LogEvent, NewEvent, Operation, Projection } from '../../src/index.ts';
import { action } from './temp-log.ts';

/** A master key as 64 hex characters, fresh for each call. */
export function newMasterKey(): string {
  return randomBytes(32).toString('hex');
}

/** Appends at the head; fails the test unless the append went through. */
export async function appendOk(log: Log, events: NewEvent[]): Promise<LogEvent[]> {
  const result = await log.append(events, { base: await log.head() });
  if (result.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  return result.events;
}

/** What a rejected promise threw; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject, it resolved');
}

/** What a function threw; fails the test when it returns. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw, it returned');
}

/** Every state of a projection, keyed by `JSON.stringify(aggregate)`, in the order `entries` gives. */
export async function statesOf<State>(projection: Projection<State>, options?: { kind?: string }): Promise<Map<string, State>> {
  const states = new Map<string, State>();
  for await (const [aggregate, state] of projection.entries(options)) states.set(JSON.stringify(aggregate), state);
  return states;
}

/** `entries()` as a plain list. */
export async function entriesOf<State>(projection: Projection<State>, options?: { kind?: string }): Promise<[Identity, State][]> {
  const out: [Identity, State][] = [];
  for await (const entry of projection.entries(options)) out.push(entry);
  return out;
}

/** A JSON Patch applied as one unit (RFC 6902 section 5): when any operation fails, nothing changes. */
export function applyAsUnit(state: unknown, patch: readonly Operation[]): unknown {
  try {
    return jsonPatch.applyPatch(structuredClone(state), structuredClone(patch as Operation[]), true, true, true).newDocument;
  } catch {
    return state;
  }
}

/**
 * The oracle: every aggregate's state folded by hand from `log.read()` (which decrypts with the
 * keys as they are now, and redacts where they are gone), keyed by `JSON.stringify(aggregate)`.
 */
export async function foldByHand(log: Log, keep: (aggregate: Identity) => boolean = () => true): Promise<Map<string, unknown>> {
  const states = new Map<string, unknown>();
  for await (const event of log.read({ replay: false })) {
    if (!('action' in event) || !keep(event.action.aggregate)) continue;
    const key = JSON.stringify(event.action.aggregate);
    states.set(key, applyAsUnit(states.get(key) ?? {}, event.action.patch));
  }
  return states;
}

/** A Map as a sorted plain object, so two maps compare equal whatever their order. */
export function sorted<V>(map: Map<string, V>): Record<string, V> {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The files under `dir`, recursively, that contain `needle` as UTF-8. */
export function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) found.push(...filesContaining(file, needle));
    else if (readFileSync(file).includes(bytes)) found.push(file);
  }
  return found;
}

const SUPPORT = new URL('.', import.meta.url).pathname;

/** A child process running `test/support/<script>` with tsx, its stdout collected by line. */
export interface Child {
  process: ChildProcessWithoutNullStreams;
  /** Resolves with the first stdout line starting with `prefix` not returned before (rejects when it exits first). */
  line(prefix: string, timeoutMs?: number): Promise<string>;
  /** Sends one line to its stdin. */
  send(line: string): void;
  /** Resolves with the exit code (or signal name) once it has exited. */
  exited: Promise<number | string>;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/**
 * Bare imports (packages) stay outside the bundle, rewritten to the absolute path of the file
 * they resolve to, so the bundle runs from any directory with this repository's node_modules.
 */
const packagesInPlace: Plugin = {
  name: 'packages-in-place',
  setup(bundler) {
    bundler.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.path.startsWith('node:') || args.pluginData === 'resolving') return undefined;
      const resolved = await bundler.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'resolving' });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      return { path: resolved.path, external: true };
    });
  },
};

/**
 * `test/support/<script>` and the sources it imports, bundled into one ES module in `dir`, the way
 * tsx would transform them. For tests that start a child many times: the bundle starts in a
 * fraction of the time tsx takes to load, which on a busy two-core machine is seconds a child.
 */
export async function bundleChild(script: string, dir: string): Promise<string> {
  const outfile = join(dir, script.replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [join(SUPPORT, script)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    conditions: ['import', 'node'],
    logLevel: 'error',
    plugins: [packagesInPlace],
  });
  return outfile;
}

/** Starts `test/support/<script>` with tsx, or a bundle made by {@link bundleChild} with plain node. */
export function spawnChild(script: string, args: string[]): Child {
  const entry = script.endsWith('.mjs') ? [script] : ['--import', 'tsx', join(SUPPORT, script)];
  const child = spawn(process.execPath, [...entry, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  let done = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
    wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  // A killed child's stdin may be closed under a pending write: that is expected, not a failure.
  child.stdin.on('error', () => {});
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
      wake();
    });
  });
  return {
    process: child,
    exited,
    stderr: () => stderr,
    send: (line) => {
      child.stdin.write(`${line}\n`);
    },
    line: (prefix, timeoutMs = 60_000) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${script}: no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        const check = () => {
          const index = lines.findIndex((l) => l.startsWith(prefix));
          if (index !== -1) finish(undefined, lines.splice(index, 1)[0]);
          else if (done) finish(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before printing "${prefix}"; stderr: ${stderr}`));
        };
        function finish(error: Error | undefined, line?: string) {
          clearTimeout(timer);
          waiters.delete(check);
          if (error === undefined) resolve(line as string);
          else reject(error);
        }
        waiters.add(check);
        check();
      }),
  };
}

/** How long an append may take to show in a followed projection on a busy machine. */
export const FOLLOW_DEADLINE_MS = 2_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Appends an action setting the /total of ['order', n]; resolves with its seq. */
export async function placeOrder(log: Log, n: number, total: number): Promise<number> {
  const [event] = await appendOk(log, [action(['order', n], [{ op: 'add', path: '/total', value: total }])]);
  return event?.seq as number;
}

/** Polls `probe` until it returns true or `deadlineMs` passes; returns the time it took, or undefined. */
export async function waitFor(probe: () => Promise<boolean>, deadlineMs: number, everyMs = 5): Promise<number | undefined> {
  const start = performance.now();
  for (;;) {
    if (await probe()) return performance.now() - start;
    if (performance.now() - start > deadlineMs) return undefined;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Follows a projection of `log` until it holds order 1, stops, then appends order 2 through
 * `log` and has `appendElsewhere` append order 3 (total 30) from elsewhere (another log on the
 * store, another process): neither may reach the projection, and stopping again is harmless.
 */
export async function expectStopEndsFollowing(log: Log, appendElsewhere: () => Promise<void>): Promise<void> {
  const orders = log.projection('orders');
  const stop = orders.follow();
  try {
    await placeOrder(log, 1, 10);
    expect(await waitFor(async () => (await orders.position()) === 1, FOLLOW_DEADLINE_MS)).toBeDefined();
  } finally {
    await stop();
  }
  expect(await orders.position()).toBe(1);

  await placeOrder(log, 2, 20);
  await appendElsewhere();
  // Several poll periods later, nothing moved.
  await sleep(300);
  expect(await log.head()).toBe(3);
  expect(await orders.position()).toBe(1);
  expect(await entriesOf(orders)).toEqual([[['order', 1], { total: 10 }]]);
  // Stopping again is harmless; a catch-up still works by hand.
  await stop();
  expect(await orders.catchUp()).toEqual({ from: 2, to: 3, actions: 2, replayed: 0 });
}
