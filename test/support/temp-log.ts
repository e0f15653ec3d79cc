import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { openLog, type Identity, type Log, type NewAction, type NewEffect, type OpenLogOptions, type Operation } from '../../src/index.ts';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A fresh directory removed after the test. */
export function tempDir(prefix = 'coherence-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A log on a fresh store, closed and removed after the test. */
export async function tempLog(options: Omit<OpenLogOptions, 'path'> = {}): Promise<{ log: Log; path: string }> {
  const path = tempDir();
  const log = await openLog({ ...options, path });
  cleanups.push(() => log.close());
  return { log, path };
}

/** An action event with sensible defaults. */
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
