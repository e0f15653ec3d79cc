import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Identity, LogEvent, NewEvent } from '../../src/index.ts';
import { openTarget } from './store-target.ts';
import { allEvents, tempDir } from './temp-log.ts';

/**
 * Several writer processes (append-child.ts) appending conflicting batches to one store at once,
 * then every result checked against what was stored: test/multi-process.test.ts on LMDB,
 * test/postgres/ on PostgreSQL. `target` is where the children and the check open the log (see
 * store-target.ts).
 */

const CHILD = fileURLToPath(new URL('./append-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

type Result =
  | { status: 'ok'; base: number; events: unknown[] }
  | { status: 'conflict'; base: number; batch: NewEvent[]; accepted: number[]; conflicts: { ours: number; theirs: unknown }[] }
  | { status: 'invalid-base'; base: number; head: number };

/** Spawns a writer; `ready` resolves once it has the store open, `done` once it has finished. */
function spawnWriter(path: string, out: string, id: number, appends: number): { ready: Promise<void>; start(): void; done: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, out, String(id), String(appends)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // A writer that died early closes its stdin; `done`/`exited` reports why, so ignore EPIPE here.
  child.stdin.on('error', () => {});
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`writer ${id} exited with ${code ?? signal}: ${stderr}`));
    });
  });
  const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return { ready: Promise.race([ready, done]), start: () => child.stdin.end('go\n'), done };
}

const key = (identity: Identity) => JSON.stringify(identity);
/** An event as it looks once written to NDJSON and parsed back (dates become ISO strings). */
const asJson = (event: LogEvent): unknown => JSON.parse(JSON.stringify(event));

/** Runs `children` writers of `appends` batches each on `path` and checks every result they got. */
export async function checkConcurrentWriters(path: string, children: number, appends: number): Promise<void> {
  const outDir = tempDir();
  const outs = Array.from({ length: children }, (_, id) => join(outDir, `child-${id}.ndjson`));
  const writers = outs.map((out, id) => spawnWriter(path, out, id, appends));
  await Promise.all(writers.map((w) => w.ready));
  for (const writer of writers) writer.start();
  await Promise.all(writers.map((w) => w.done));

  const log = await openTarget(path);
  try {
    const events = await allEvents(log);
    const head = await log.head();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));

    // What each stored event touches: an action its aggregate; an effect every aggregate with an
    // action linked to its trigger at or before it (SPEC 1).
    const linked = new Map<string, Set<string>>();
    const touches = events.map((event) => {
      if ('action' in event) {
        for (const trigger of event.triggers) {
          const aggregates = linked.get(key(trigger)) ?? new Set<string>();
          aggregates.add(key(event.action.aggregate));
          linked.set(key(trigger), aggregates);
        }
        return new Set([key(event.action.aggregate)]);
      }
      return new Set(linked.get(key(event.effect.trigger)));
    });
    /** The seqs in (base, upTo] that an action on `aggregate` conflicts with. */
    const conflictingSeqs = (aggregate: Identity, base: number, upTo: number) => {
      const seqs: number[] = [];
      for (let seq = base + 1; seq <= upTo; seq++) if (touches[seq - 1]?.has(key(aggregate))) seqs.push(seq);
      return seqs;
    };

    const results = outs.flatMap((out) => readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Result));
    expect(results).toHaveLength(children * appends);
    // Twenty thousand results: collect what is wrong with them, then assert once.
    const problems: string[] = [];
    const check = (ok: boolean, problem: () => string) => { if (!ok) problems.push(problem()); };
    const written = new Set<number>();
    let conflicts = 0;
    for (const result of results) {
      if (result.status === 'invalid-base') {
        problems.push(`invalid-base for base ${result.base}, which the writer had seen`);
      } else if (result.status === 'ok') {
        const seqs = result.events.map((e) => (e as { seq: number }).seq);
        const first = seqs[0] as number;
        check(seqs.every((seq, i) => seq === first + i), () => `ok with seqs ${seqs.join(',')}`);
        for (const [i, seq] of seqs.entries()) {
          check(!written.has(seq), () => `seq ${seq} acknowledged to two writers`);
          written.add(seq);
          check(isDeepStrictEqual(result.events[i], asJson(events[seq - 1] as LogEvent)), () => `ok event ${seq} differs from the stored one`);
        }
        // Nothing that would have conflicted came between the base and the write.
        for (const event of result.events as LogEvent[]) {
          if (!('action' in event)) continue;
          const missed = conflictingSeqs(event.action.aggregate, result.base, first - 1);
          check(missed.length === 0, () => `ok at ${first} based on ${result.base} although ${missed.join(',')} touched ${key(event.action.aggregate)}`);
        }
      } else {
        conflicts++;
        // The batch was checked at the head just below its tentative seqs.
        const tentative = [...result.accepted, ...result.conflicts.map((c) => c.ours)];
        const checkedAt = Math.min(...tentative) - 1;
        check(checkedAt >= result.base, () => `conflict checked at ${checkedAt}, below its base ${result.base}`);
        const expected = result.batch.flatMap((event, i) =>
          'action' in event ? conflictingSeqs(event.action.aggregate, result.base, checkedAt).map((seq) => ({ ours: checkedAt + 1 + i, theirs: seq })) : [],
        );
        const reported = result.conflicts.map((c) => ({ ours: c.ours, theirs: (c.theirs as { seq: number }).seq }));
        check(isDeepStrictEqual(reported, expected), () => `conflict based on ${result.base} at ${checkedAt}: reported ${JSON.stringify(reported)}, expected ${JSON.stringify(expected)}`);
        for (const { theirs } of result.conflicts) {
          const seq = (theirs as { seq: number }).seq;
          check(isDeepStrictEqual(theirs, asJson(events[seq - 1] as LogEvent)), () => `conflict names event ${seq} with content that differs from the stored one`);
        }
        const conflicting = new Set(expected.map((c) => c.ours));
        const accepted = result.batch.map((_, i) => checkedAt + 1 + i).filter((seq) => !conflicting.has(seq));
        check(isDeepStrictEqual(result.accepted, accepted), () => `conflict accepted ${result.accepted.join(',')}, expected ${accepted.join(',')}`);
      }
    }
    expect(problems.slice(0, 10), `${problems.length} problems`).toEqual([]);
    // Every stored event was acknowledged to exactly one writer, and the writers did collide.
    expect(written.size).toBe(head);
    expect(conflicts).toBeGreaterThan(0);
    expect(await log.verify()).toEqual({ ok: true, events: head });
  } finally {
    await log.close();
  }
}
