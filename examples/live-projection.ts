/**
 * A live projection: this process follows an `orders` projection while a second process
 * (examples/live-writer.ts, spawned here) appends to the same store. `follow` picks up the
 * other process's appends by itself, within 100 ms; this process only looks at the result.
 *
 *   npx tsx examples/live-projection.ts             (uses ./data/live-projection, recreated)
 *   npx tsx examples/live-projection.ts /some/dir
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openLog } from 'coherence';

const path = process.argv[2] ?? './data/live-projection';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });
const log = await openLog({ path });

interface Order { status: string; items: string[] }
const orders = log.projection<Order>('orders', { kinds: ['order'] });
const errors: unknown[] = [];
const stop = orders.follow({ onError: (error) => errors.push(error) });

// The writer: this same Node.js with the same loader flags (tsx), on the same store directory.
const writerFile = fileURLToPath(new URL('./live-writer.ts', import.meta.url));
const writer = spawn(process.execPath, [...process.execArgv, writerFile, path], { stdio: 'inherit' });
let writerExit: string | undefined;
writer.on('exit', (code, signal) => { writerExit = code === null ? `signal ${signal}` : `code ${code}`; });
writer.on('error', (error) => errors.push(error));
console.log(`Following the orders projection; writer process ${writer.pid} appends to ${path}.`);

/** One line for the whole board: every order the projection holds, with its status. */
async function board(): Promise<string> {
  const lines: string[] = [];
  for await (const [[, id], order] of orders.entries()) lines.push(`order ${id} ${order.status}`);
  return lines.join(', ');
}

try {
  // Redraw whenever the projection's position moves, until the writer is done and the
  // projection has everything it wrote.
  let shown = 0;
  for (const deadline = Date.now() + 30_000; ;) {
    if (errors.length > 0) throw errors[0];
    if (Date.now() > deadline) throw new Error('expected the writer to finish within 30 s');
    const position = await orders.position();
    if (position > shown) {
      console.log(`projection at #${position}: ${await board()}`);
      shown = position;
    }
    if (writerExit !== undefined) {
      if (writerExit !== 'code 0') throw new Error(`the writer exited with ${writerExit}`);
      if (position === await log.head()) break;
    }
    await sleep(20);
  }
  const final = await board();
  if (final !== 'order 1 shipped, order 2 paid, order 3 placed') throw new Error(`unexpected final board: ${final}`);
} finally {
  writer.kill();
  await stop(); // waits for the catch-up in progress, if any
  await log.close();
}

console.log('The writer is done and the projection has all it wrote; stopped following.');
