import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { expect, onTestFinished } from 'vitest';
import { openTarget } from './store-target.ts';
import { allEvents } from './temp-log.ts';

/**
 * A writer process (crash-child.ts) SIGKILLed mid-stream, again and again, the store checked after
 * each kill: test/crash.test.ts on LMDB, test/postgres/ on PostgreSQL. `path` is where the
 * children and the check open the log (see store-target.ts).
 */

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Writer {
  /** Resolves once the writer has the store open and waits for `start`. */
  ready: Promise<void>;
  /**
   * Lets the writer append, waits for its first acknowledgement, lets it run a random few
   * milliseconds more and kills it with SIGKILL. Resolves with every acknowledged event (parsed
   * JSON), ignoring a last line cut short by the kill.
   */
  start(): Promise<{ seq: number }[]>;
  /** Kills the writer if it is still running. */
  kill(): void;
}

/**
 * Spawns a writer on `path`. Writers are spawned one run ahead, so that the next one's start-up
 * overlaps the current run, and it has the store open while the current writer is killed.
 */
function spawnWriter(path: string, run: number): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, String(run)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  // A writer that died early closes its stdin; `done`/`exited` reports why, so ignore EPIPE here.
  child.stdin.on('error', () => {});
  let stdout = '';
  let stderr = '';
  let started = false;
  let onReady = () => {};
  let onAck = () => {};
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  const firstAck = new Promise<void>((resolve) => { onAck = resolve; });
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.startsWith('ready\n')) onReady();
    if (started && stdout.length > 'ready\n'.length && stdout.indexOf('\n', 'ready\n'.length) !== -1) onAck();
  });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<{ seq: number }[]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`run ${run}: the writer stopped by itself (${code ?? signal}): ${stderr}`));
        return;
      }
      const acks = stdout.slice('ready\n'.length, stdout.lastIndexOf('\n') + 1);
      resolve(acks.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { seq: number }));
    });
  });
  // A writer that dies before it is started fails `ready` rather than hanging the test.
  const failed = exited.then(() => { throw new Error(`run ${run}: the writer died before it was started: ${stderr}`); });
  return {
    ready: Promise.race([ready, failed]),
    async start() {
      started = true;
      child.stdin.write('go\n');
      const giveUp = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await Promise.race([firstAck, exited]);
      clearTimeout(giveUp);
      setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 50));
      return exited;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Kills a writer on `path` `kills` times and checks, after each, every event it acknowledged. */
export async function checkKilledWriters(path: string, kills: number): Promise<void> {
  const acknowledged = new Map<number, unknown>();
  let next = spawnWriter(path, 0);
  onTestFinished(() => next.kill());
  for (let run = 0; run < kills; run++) {
    const writer = next;
    await writer.ready;
    if (run + 1 < kills) next = spawnWriter(path, run + 1);
    const acks = await writer.start();
    expect(acks.length).toBeGreaterThan(0);
    for (const event of acks) {
      expect(acknowledged.has(event.seq), `seq ${event.seq} acknowledged twice`).toBe(false);
      acknowledged.set(event.seq, event);
    }

    const log = await openTarget(path);
    try {
      const head = await log.head();
      const events = await allEvents(log);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
      const lost = [...acknowledged].filter(([seq, event]) => !isDeepStrictEqual(JSON.parse(JSON.stringify(events[seq - 1] ?? null)), event));
      expect(lost.map(([seq]) => seq), `run ${run}: acknowledged events missing or changed`).toEqual([]);
      expect(await log.verify()).toEqual({ ok: true, events: head });
    } finally {
      await log.close();
    }
  }
}
