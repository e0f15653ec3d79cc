/**
 * Exactly once, the hard way (SPEC 11): a process manager working through 10,000 events in a
 * child process killed with SIGKILL at random moments twenty times, and two processes running
 * the same manager at once, must both end with every event's commands in the log exactly once
 * (counted by the causing seq the commands record), none missing, and the states of a clean run.
 * And a notifier killed mid-delivery repeats at most the events in flight, counted on the
 * receiving side.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifier, openLog, type Log } from '../src/index.ts';
import { MAX_IN_FLIGHT } from '../src/commands/notifier.ts';
import { bundleChild, spawnChild, type Child } from './support/projection-fixtures.ts';
import { appendWorkload, effectsBySeq, fulfilment, outcome, SKUS } from './support/reaction-fixtures.ts';
import { action, tempDir } from './support/temp-log.ts';
import { random } from './support/random.ts';

const EVENTS = 10_000;
const ROUNDS = 20;
/** The payments are seqs SKUS + 1 .. SKUS + EVENTS (the stocking comes first). */
const FIRST = SKUS + 1;
const LAST = SKUS + EVENTS;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Every payment's reservation or rejection appears exactly once. */
async function expectExactlyOnce(log: Log, label: string): Promise<void> {
  const { reserved, rejected } = await effectsBySeq(log, fulfilment(log));
  const wrong: string[] = [];
  for (let seq = FIRST; seq <= LAST; seq++) {
    const count = (reserved.get(seq) ?? 0) + (rejected.get(seq) ?? 0);
    if (count !== 1) wrong.push(`${seq}: ${count}`);
  }
  for (const seq of [...reserved.keys(), ...rejected.keys()]) if (seq < FIRST || seq > LAST) wrong.push(`${seq}: not a payment`);
  expect(wrong, `${label}: seqs whose commands are not in the log exactly once`).toEqual([]);
  expect(rejected.size, `${label}: some payments found no stock`).toBeGreaterThan(0);
}

describe('process managers and notifiers killed while they work', () => {
  let clean: { log: Log; done: Promise<unknown> };
  let script: string;
  const children: Child[] = [];
  // Shared by the tests of this file (tempDir's are removed after each test).
  const shared = mkdtempSync(join(tmpdir(), 'coherence-reactions-'));

  beforeAll(async () => {
    script = await bundleChild('process-crash.ts', shared);
    // The clean run, in this process, while the others run in children: their reference.
    const log = await openLog({ path: mkdtempSync(join(shared, 'clean-')) });
    await appendWorkload(log, EVENTS);
    const manager = fulfilment(log);
    clean = { log, done: manager.catchUp().then(() => outcome(log, manager)) };
  }, 60_000);

  afterAll(async () => {
    for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited));
    await clean.done.catch(() => {});
    await clean.log.close();
    rmSync(shared, { recursive: true, force: true });
  });

  const spawn = (path: string) => {
    const child = spawnChild(script, [path]);
    children.push(child);
    return child;
  };

  it('a manager SIGKILLed twenty times through 10,000 events emits every event\'s commands exactly once and ends with the states of a clean run', async () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    const path = tempDir();
    const log = await openLog({ path });
    try {
      await appendWorkload(log, EVENTS);
      let killed = 0;
      let upcoming = spawn(path);
      for (let round = 0; round < ROUNDS; round++) {
        const child = upcoming;
        await child.line('loaded');
        upcoming = spawn(path);
        child.send('go');
        await child.line('start ');
        // Anywhere in its work: right away, mid-append, mid-checkpoint.
        const finished = await Promise.race([child.line('done ', 120_000).then(() => true, () => false), sleep(next() * 300).then(() => false)]);
        if (!finished) {
          child.process.kill('SIGKILL');
          killed++;
        }
        await child.exited;
      }
      // The last one finishes the work.
      const last = upcoming;
      await last.line('loaded');
      last.send('go');
      await last.line('done ', 120_000);
      expect(await last.exited, last.stderr()).toBe(0);
      expect(killed, `seed ${seed}: kills that landed while it worked`).toBeGreaterThanOrEqual(10);

      await expectExactlyOnce(log, `seed ${seed}`);
      const manager = fulfilment(log);
      expect(await outcome(log, manager), `seed ${seed}: the states of a clean run`).toEqual(await clean.done);
      expect(await log.verify()).toMatchObject({ ok: true });
    } finally {
      await log.close();
    }
  }, 120_000);

  it('two processes running the same manager at once take each event once, with the states of a clean run', async () => {
    const path = tempDir();
    const log = await openLog({ path });
    try {
      await appendWorkload(log, EVENTS);
      const pair = [spawn(path), spawn(path)];
      await Promise.all(pair.map((child) => child.line('loaded')));
      for (const child of pair) child.send('go');
      const results = await Promise.all(pair.map(async (child) => JSON.parse((await child.line('done ', 120_000)).slice('done '.length)) as { commands: number }));
      for (const child of pair) expect(await child.exited, child.stderr()).toBe(0);
      // Each did part of the work; between them, all of it once.
      expect(results.every((r) => r.commands > 0)).toBe(true);
      await expectExactlyOnce(log, 'two processes');
      expect(await outcome(log, fulfilment(log))).toEqual(await clean.done);
    } finally {
      await log.close();
    }
  }, 120_000);

  it('a notifier SIGKILLed mid-delivery repeats at most the events in flight: those handed out after the checkpoint it had committed', async () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    const path = tempDir();
    const received = join(tempDir(), 'received');
    writeFileSync(received, '');
    const log = await openLog({ path });
    const notifierScript = await bundleChild('notifier-crash.ts', tempDir());
    try {
      const count = 3_000;
      for (let from = 0; from < count; from += 1000) {
        const batch = Array.from({ length: 1000 }, (_, i) => action(['customer', (from + i) % 300], [{ op: 'add', path: '/n', value: from + i }]));
        const result = await log.append(batch, { base: await log.head() });
        expect(result.status).toBe('ok');
      }
      // The committed checkpoint is what a restart starts from, as it reports it: a process that
      // opens the store sees every commit that reached the file, even one the killed child made
      // in its last moment, which other processes' readers may not have been told of yet.
      const lines = () => readFileSync(received, 'utf8').split('\n').filter((l) => l !== '').map(Number);
      let killed = 0;
      let repeats = 0;
      let killedRound: { round: number; delivered: number[] } | undefined;
      for (let round = 0; ; round++) {
        const child = spawnChild(notifierScript, [path, received]);
        children.push(child);
        await child.line('loaded');
        const before = lines().length;
        child.send('go');
        const committed = Number((await child.line('start ')).split(' ')[1]);
        if (killedRound === undefined) {
          expect(committed).toBe(0);
        } else {
          // What the killed one had handed out after the checkpoint it had committed was in
          // flight: this round delivers it again, and only it.
          const inFlight = killedRound.delivered.filter((seq) => seq > committed);
          expect(inFlight.length, `seed ${seed}, round ${killedRound.round}: events in flight at the kill`).toBeLessThanOrEqual(MAX_IN_FLIGHT);
          repeats += inFlight.length;
        }
        const finished = round >= 10 || (await Promise.race([child.line('done ', 60_000).then(() => true, () => false), sleep(100 + next() * 600).then(() => false)]));
        if (!finished) {
          child.process.kill('SIGKILL');
          killed++;
        } else if (round >= 10) {
          await child.line('done ', 60_000);
        }
        // Killed (or, by a hair, done first): never failed on its own.
        expect([0, 'SIGKILL'], child.stderr()).toContain(await child.exited);
        const delivered = lines().slice(before);
        // A restart begins right after the committed checkpoint, never before it.
        expect(delivered[0] ?? committed + 1, `seed ${seed}, round ${round}`).toBeGreaterThan(committed);
        if (finished) break;
        killedRound = { round, delivered };
      }
      expect(killed, `seed ${seed}`).toBeGreaterThanOrEqual(3);
      const all = lines();
      const counts = new Map<number, number>();
      for (const seq of all) counts.set(seq, (counts.get(seq) ?? 0) + 1);
      expect(counts.size, 'every event delivered').toBe(count);
      expect(all.length - count, `seed ${seed}: repeats are the events in flight at the kills`).toBe(repeats);
      expect(await createNotifier(log, 'mail', { kinds: ['customer'], handle: () => Promise.reject(new Error('not here')) }).position()).toBe(count);
    } finally {
      await log.close();
    }
  }, 120_000);
});
