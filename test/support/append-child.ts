/**
 * A writer process for test/multi-process.test.ts. Appends `count` batches of 1 to 3 events over
 * a few aggregates to the store at `path`, several at a time, each based on the highest head
 * this process has seen, and writes every result as one NDJSON line to `out`:
 *   { status: 'ok', base, events }                                (the events as returned)
 *   { status: 'conflict', base, batch, accepted, conflicts }      (seqs, and `theirs` in full)
 *   { status: 'invalid-base', base, head }
 *
 * It prints `ready` once the store is open and starts when a line arrives on stdin.
 *
 * Usage: node --import tsx append-child.ts <path> <out> <child id> <count>
 */
import { writeFileSync } from 'node:fs';
import type { Identity, NewEvent } from '../../src/index.ts';
import { openTarget } from './store-target.ts';

const [path, out, idText, countText] = process.argv.slice(2);
if (path === undefined || out === undefined || idText === undefined || countText === undefined) {
  throw new Error('usage: append-child.ts <path> <out> <child id> <count>');
}
const id = Number(idText);
const count = Number(countText);

// mulberry32: a seeded generator, so that a failing run can be repeated with the same choices.
let seed = (id + 1) * 0x9e3779b9;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function pick<T>(items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

const AGGREGATES: Identity[] = [...Array.from({ length: 31 }, (_, i): Identity => ['item', i]), ['item', 'x']];
const TRIGGERS: Identity[] = [['key', 'a'], ['key', 'b']];
const source = `child-${id}`;
const IN_FLIGHT = 8;

function newEvent(n: number): NewEvent {
  if (random() < 0.005) return { source, effect: { reason: 'expired', trigger: pick(TRIGGERS) } };
  return {
    source,
    action: { reason: `append ${n}`, actor: ['child', id], aggregate: pick(AGGREGATES), patch: [{ op: 'add', path: `/child${id}`, value: n }] },
    ...(random() < 0.2 ? { triggers: [pick(TRIGGERS)] } : {}),
  };
}

const log = await openTarget(path);
// Tell the parent the store is open and wait for its word, so that all writers start together.
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const lines: string[] = [];
let base = await log.head();
let issued = 0;

/** Appends batches one after another, each based on the highest head this process has seen. */
async function writer(): Promise<void> {
  while (issued < count) {
    const n = issued++;
    const batch = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => newEvent(n * 3 + i));
    const batchBase = Math.max(base, await log.head());
    const result = await log.append(batch, { base: batchBase });
    switch (result.status) {
      case 'ok':
        lines.push(JSON.stringify({ status: 'ok', base: batchBase, events: result.events }));
        base = Math.max(base, result.events.at(-1)?.seq ?? 0);
        break;
      case 'conflict':
        lines.push(JSON.stringify({
          status: 'conflict',
          base: batchBase,
          batch,
          accepted: result.accepted.map((e) => e.seq),
          conflicts: result.conflicts.map((c) => ({ ours: c.ours.seq, theirs: c.theirs })),
        }));
        base = Math.max(base, await log.head());
        break;
      case 'invalid-base':
        lines.push(JSON.stringify({ status: 'invalid-base', base: batchBase, head: result.head }));
        base = Math.max(base, await log.head());
        break;
    }
  }
}

// A few appends in flight at once, as a busy server would have: lmdb-js commits them together,
// so the 5,000 appends of each process cost far fewer fsyncs than 5,000 commits one by one.
await Promise.all(Array.from({ length: IN_FLIGHT }, writer));
writeFileSync(out, `${lines.join('\n')}\n`);
await log.close();
