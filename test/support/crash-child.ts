/**
 * A writer process for test/crash.test.ts, meant to be killed with SIGKILL. Opens the store at
 * `path`, prints `ready`, waits for a line on stdin, then appends forever: single events,
 * multi-event batches and several appends in flight at once.
 * Once an append's promise has resolved, it prints each of the batch's events as one NDJSON line
 * on stdout: that line is the acknowledgement the parent holds the store to.
 *
 * Usage: node --import tsx crash-child.ts <path> <run>
 */
import type { Identity, LogEvent, NewEvent } from '../../src/index.ts';
import { openTarget } from './store-target.ts';

const [path, run] = process.argv.slice(2);
if (path === undefined || run === undefined) throw new Error('usage: crash-child.ts <path> <run>');

const TRIGGERS: Identity[] = [['key', 'a'], ['key', 'b']];
const source = `crash-${run}`;
let n = 0;

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

/** An action on an aggregate of its own slot, so appends in flight together never conflict. */
function newEvent(slot: number): NewEvent {
  n++;
  if (Math.random() < 0.05) return { source, effect: { reason: 'expired', trigger: pick(TRIGGERS) } };
  return {
    source,
    action: {
      reason: `write ${n}`,
      actor: ['crash', Number(run)],
      aggregate: ['slot', slot],
      // Sizes from a few bytes to a few kilobytes, so that commits span one page or several.
      patch: [{ op: 'add', path: '/n', value: n }, { op: 'add', path: '/payload', value: 'x'.repeat(Math.floor(Math.random() ** 3 * 4000)) }],
    },
    ...(Math.random() < 0.3 ? { triggers: [pick(TRIGGERS)] } : {}),
  };
}

function acknowledge(events: readonly LogEvent[]): void {
  // Writes to a pipe are synchronous on Linux: once this returns, the parent can read the line.
  for (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
}

const log = await openTarget(path);
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
for (;;) {
  const mode = Math.random();
  const base = await log.head();
  if (mode < 0.4) {
    const result = await log.append([newEvent(0)], { base });
    if (result.status === 'ok') acknowledge(result.events);
  } else if (mode < 0.7) {
    const result = await log.append(Array.from({ length: 2 + Math.floor(Math.random() * 4) }, () => newEvent(1)), { base });
    if (result.status === 'ok') acknowledge(result.events);
  } else {
    const slots = Array.from({ length: 2 + Math.floor(Math.random() * 4) }, (_, i) => 2 + i);
    await Promise.all(
      slots.map(async (slot) => {
        const result = await log.append([newEvent(slot)], { base });
        if (result.status === 'ok') acknowledge(result.events);
      }),
    );
  }
}
