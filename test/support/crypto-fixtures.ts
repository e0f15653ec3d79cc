/**
 * Fixtures of the encryption tests: master keys, a clock the test moves, byte scans of a store
 * directory, and the child processes that act on a store from outside the test's process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';
import { KeyDestroyedError, type AppendResult, type EffectEvent, type Identity, type Log, type LogEvent, type NewAction, type NewEvent } from '../../src/index.ts';
import { action, allEvents } from './temp-log.ts';

/** The log refuses `__proto__` keys in values (they could reach a prototype); leave them out. */
function hasProtoKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasProtoKey);
  if (typeof value === 'object' && value !== null) {
    return Object.keys(value).some((k) => k === '__proto__' || hasProtoKey((value as Record<string, unknown>)[k]));
  }
  return false;
}

/** Any JSON value the log takes. */
export const jsonValue = fc.jsonValue().filter((value) => !hasProtoKey(value));
/** What a JSON value is as JSON: the one thing the round trip may change is -0 into 0. */
export const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** A master key as 64 hex characters, fresh for each call. */
export function newMasterKey(): string {
  return randomBytes(32).toString('hex');
}

/** A clock the test sets: `clock.now` is what the log sees. */
export function manualClock(start = '2024-01-31T12:00:00.000Z'): { now: Date; read: () => Date; advance: (ms: number) => void } {
  const clock = {
    now: new Date(start),
    read: () => clock.now,
    advance: (ms: number) => {
      clock.now = new Date(clock.now.getTime() + ms);
    },
  };
  return clock;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/** What a `ttl` or `keyTtl` must not be: not a date-fns Duration, or none a Date can reach. */
export const notDurations: unknown[] = [
  { fortnights: 1 },
  { days: -1 },
  { days: 1, hours: -1 },
  -1,
  30,
  '30 days',
  'P30D',
  {},
  { days: 0 },
  { days: Number.NaN },
  { days: Number.POSITIVE_INFINITY },
  { days: '1' },
  [30],
  null,
  new Date('2030-01-01'),
  // Valid units, but no Date can be that far away.
  { years: 1_000_000 },
];

/** Master keys of the wrong length or format, some made from the good one `hex`. */
export function badMasterKeys(hex: string): unknown[] {
  return [
    new Uint8Array(31),
    new Uint8Array(33),
    new Uint8Array(0),
    hex.slice(0, 63),
    `${hex}0`,
    `${hex.slice(0, 62)}zz`,
    ` ${hex.slice(1)}`,
    '',
    42,
    null,
    [...Buffer.from(hex, 'hex')],
    new Uint16Array(16),
  ];
}

/** An action adding `email` at /email of `aggregate`, encrypted under `key`. */
export function encrypted(aggregate: Identity, key: Identity, email: string): NewAction {
  return action(aggregate, [{ op: 'add', path: '/email', value: email }], { encrypt: { key } });
}

/** The events of an `ok` result; fails the test otherwise. */
export function ok(result: AppendResult): LogEvent[] {
  if (result.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  return result.events;
}

export async function appendOk(log: Log, events: NewEvent[]): Promise<LogEvent[]> {
  return ok(await log.append(events, { base: await log.head() }));
}

/** The patch of an action event (fails the test for an effect). */
export function patchOf(event: LogEvent | undefined): { op: string; path: string; value?: unknown }[] {
  if (event === undefined || !('action' in event)) throw new Error(`expected an action event, got ${JSON.stringify(event)}`);
  return event.action.patch as { op: string; path: string; value?: unknown }[];
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

/** Values appended encrypted by {@link appendSecrets}, each unique enough for a byte scan to find. */
export const SECRETS = {
  email: 'alice.ultraviolet-7c1f@example.org',
  ssn: 'SSN-078-05-1120-marigold',
  nested: 'nested-secret-quixotic-heron',
  inArray: 'array-secret-obsidian-lantern',
  // Larger than a page, so LMDB keeps it on overflow pages.
  long: `long-secret-${'periwinkle-'.repeat(1200)}end`,
  replaced: 'replaced-secret-saffron-dirigible',
};

/** The unencrypted text of the same events. */
export const PUBLIC_TEXT = {
  name: 'Public-Name-Tangerine-Overture',
  reason: 'reason-marker-lavender-sextant',
  city: 'Public-City-Vermilion-Harbour',
};

/**
 * Appends two batches to `log` (a master key needed): ['customer', 'alice'] with public text and
 * secrets at /email, /ids and /history, ['customer', 'bob'] with a secret larger than a page,
 * then alice's /email replaced by another secret.
 */
export async function appendSecrets(log: Log): Promise<void> {
  const alice: Identity = ['customer', 'alice'];
  const aliceKey: Identity = ['user', 'alice'];
  await appendOk(log, [
    action(alice, [
      { op: 'add', path: '/name', value: PUBLIC_TEXT.name },
      { op: 'add', path: '/email', value: SECRETS.email },
      { op: 'add', path: '/ids', value: { ssn: SECRETS.ssn, deep: { nested: SECRETS.nested } } },
      { op: 'add', path: '/history', value: [1, SECRETS.inArray, { x: SECRETS.inArray }] },
      { op: 'add', path: '/city', value: PUBLIC_TEXT.city },
    ], { reason: PUBLIC_TEXT.reason, encrypt: { key: aliceKey, paths: ['/email', '/ids', '/history'] } }),
    action(['customer', 'bob'], [{ op: 'add', path: '/notes', value: SECRETS.long }], { encrypt: { key: ['user', 'bob'] } }),
  ]);
  await appendOk(log, [action(alice, [{ op: 'replace', path: '/email', value: SECRETS.replaced }], { encrypt: { key: aliceKey } })]);
}

/**
 * A shred made elsewhere (through another log on the store, or by another process) while `log`
 * holds the plaintext it read: `shred` shreds ['user', 'alice'] there and returns the effect.
 * Every read of `log` must redact at once, without reopening.
 */
export async function expectShredSeenAtOnce(log: Log, shred: () => Promise<EffectEvent>): Promise<void> {
  const alice: Identity = ['customer', 'alice'];
  const aliceKey: Identity = ['user', 'alice'];
  await appendOk(log, [encrypted(alice, aliceKey, 'alice@example.com'), encrypted(['customer', 'bob'], ['user', 'bob'], 'bob@example.com')]);
  // The plaintext was read, so the unwrapped key sits in this log's cache.
  expect(patchOf(await log.get(1))[0]?.value).toBe('alice@example.com');
  expect((await log.state(alice)).state).toEqual({ email: 'alice@example.com' });

  const effect = await shred();
  expect(effect).toMatchObject({ seq: 3, source: 'keystore', effect: { reason: 'shredded', trigger: aliceKey } });

  // Same open log, no reopen: every read now redacts.
  expect(patchOf(await log.get(1))[0]?.value).toBeNull();
  expect(await log.state(alice)).toEqual({ state: { email: null }, head: 3 });
  const events = await allEvents(log);
  expect(events.map((e) => ('action' in e ? e.action.patch[0] : e.effect))).toEqual([
    { op: 'add', path: '/email', value: null },
    { op: 'add', path: '/email', value: 'bob@example.com' },
    { reason: 'shredded', trigger: aliceKey },
  ]);
  expect(await log.conflicts(2, alice)).toEqual([effect]);
  expect(await log.keys.get(aliceKey)).toMatchObject({ reason: 'shredded', destroyedAt: expect.any(Date) });
  expect(await rejection(log.append([encrypted(alice, aliceKey, 'again@example.com')], { base: 3 }))).toBeInstanceOf(KeyDestroyedError);
  expect(await rejection(log.keys.shred(aliceKey))).toBeInstanceOf(KeyDestroyedError);
  expect(await log.head()).toBe(3);
}

/** Everything that tells whether a store changed: the head, every event and every key. */
export async function storeSnapshot(log: Log) {
  const keys = [];
  for await (const info of log.keys.list()) keys.push(info);
  return { head: await log.head(), events: await allEvents(log), keys };
}

/** Every file under `dir`, recursively, with its bytes. */
export function storeFiles(dir: string): { file: string; bytes: Buffer }[] {
  const files: { file: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) files.push(...storeFiles(file));
    else files.push({ file, bytes: readFileSync(file) });
  }
  return files;
}

/**
 * Reads every file under `dir` once; the function returned lists those that contain `needle`
 * (a string is searched for as UTF-8).
 */
export function scanFiles(dir: string): (needle: string | Uint8Array) => string[] {
  const files = storeFiles(dir);
  return (needle) => {
    const bytes = typeof needle === 'string' ? Buffer.from(needle, 'utf8') : Buffer.from(needle);
    if (bytes.length < 8) throw new Error('a needle this short could match by chance');
    return files.filter(({ bytes: content }) => content.includes(bytes)).map(({ file }) => file);
  };
}

/** The files under `dir` that contain `needle` (a string is searched for as UTF-8). */
export function filesContaining(dir: string, needle: string | Uint8Array): string[] {
  return scanFiles(dir)(needle);
}

/** The names of the entries directly in the store directory. */
export function storeEntries(dir: string): string[] {
  return readdirSync(dir).sort();
}

const SUPPORT = new URL('.', import.meta.url).pathname;

/** A child process running `test/support/<script>` with tsx; its stdout is collected by line. */
export interface Child {
  process: ChildProcessWithoutNullStreams;
  /** Resolves with the first stdout line that starts with `prefix` (rejects when it exits first). */
  line(prefix: string, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or signal name) once it has exited. */
  exited: Promise<number | string>;
}

export function spawnChild(script: string, args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', join(SUPPORT, script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
      for (const wake of waiters) wake();
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    process: child,
    exited,
    line: (prefix, timeoutMs = 30_000) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${script}: no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        const check = () => {
          const found = lines.find((l) => l.startsWith(prefix));
          if (found !== undefined) finish(undefined, found);
          else if (done || child.exitCode !== null || child.signalCode !== null) {
            finish(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before printing "${prefix}"; stderr: ${stderr}`));
          }
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

/** Runs a child to its end and returns the JSON it printed on its `result ` line. */
export async function runChild<T>(script: string, args: string[]): Promise<T> {
  const child = spawnChild(script, args);
  const line = await child.line('result ');
  expect(await child.exited).toBe(0);
  return JSON.parse(line.slice('result '.length)) as T;
}

/** Identities travel to children as JSON arguments. */
export function identityArg(identity: Identity): string {
  return JSON.stringify(identity);
}
