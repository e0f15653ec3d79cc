import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { openLog, type Identity, type Log, type NewAction, type NewEffect, type OpenLogOptions, type Operation, type VerifyResult } from '../../src/index.ts';

/** What a test chooses when it opens a log: everything but where the store is. */
export type LogOptions = Omit<OpenLogOptions, 'path' | 'engine'>;

/** A log on a fresh store, and a way to open more logs on that same store. */
export interface TempLog {
  log: Log;
  /** Opens another log on the same store (it may be open at the same time); closed after the test. */
  reopen(options?: LogOptions): Promise<Log>;
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Runs `cleanup` after the test; the cleanups of one test run last registered first. */
export function afterTest(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

/** A fresh directory removed after the test. */
export function tempDir(prefix = 'coherence-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterTest(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A log opened by `open` on a store the caller made fresh (and removes after the test), with
 * `reopen` opening more on it; every log opened is closed after the test, before the store goes.
 */
export async function tempLogOn(open: (options: LogOptions) => Promise<Log>, options: LogOptions = {}): Promise<TempLog> {
  const reopen = async (more: LogOptions = {}) => {
    const log = await open(more);
    afterTest(() => log.close());
    return log;
  };
  return { log: await reopen(options), reopen };
}

/** A log on a fresh LMDB store in a temporary directory, closed and removed after the test. */
export async function tempLog(options: LogOptions = {}): Promise<TempLog & { path: string }> {
  const path = tempDir();
  return { ...(await tempLogOn((more) => openLog({ ...more, path }), options)), path };
}

/** An action event with sensible defaults. */
/** Reopens the closed store at `path`, verifies it and closes it again. */
export async function verifyClosed(path: string, options: LogOptions = {}): Promise<VerifyResult> {
  const log = await openLog({ ...options, path });
  try {
    return await log.verify();
  } finally {
    await log.close();
  }
}

export function action(aggregate: Identity, patch: Operation[], extra: Partial<NewAction> & { actor?: Identity; reason?: string } = {}): NewAction {
  const { actor = ['user', 'alice'], reason = 'edit', ...rest } = extra;
  return { source: 'test', action: { reason, actor, aggregate, patch }, ...rest };
}

/** An effect event. */
export function effect(trigger: Identity, reason = 'shredded'): NewEffect {
  return { source: 'test', effect: { reason, trigger } };
}

/** Every event of the log, read from 1 without replay. */
export async function allEvents(log: Log) {
  const events = [];
  for await (const event of log.read({ replay: false })) events.push(event);
  return events;
}
