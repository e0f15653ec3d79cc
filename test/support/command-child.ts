/**
 * Child of the command property test: many executes of the increment decider on one counter,
 * without a base, several in flight, racing the other processes doing the same.
 *
 *   node --import tsx command-child.ts <path> <executes> <in flight> <attempts>
 *
 * Prints `ready` once the store is open, starts on a line on stdin, and prints one JSON line:
 * { ok, conflict, attempts } (counts of each status, and the attempts of every result).
 */
import { createInterface } from 'node:readline';
import { createCommandService, openLog, type CommandResult } from '../../src/index.ts';
import { actor, deciders } from './command-fixtures.ts';

const [path, countText, inFlightText, attemptsText] = process.argv.slice(2);
if (path === undefined || countText === undefined || inFlightText === undefined || attemptsText === undefined) {
  throw new Error('usage: command-child.ts <path> <executes> <in flight> <attempts>');
}
const log = await openLog({ path });
const commands = createCommandService(log, { deciders, retry: { attempts: Number(attemptsText), minDelayMs: 0, maxDelayMs: 2 } });
const input = createInterface({ input: process.stdin });
console.log('ready');
await input[Symbol.asyncIterator]().next();
input.close();

const results: CommandResult[] = [];
let issued = 0;
async function worker(): Promise<void> {
  while (issued < Number(countText)) {
    issued++;
    results.push(await commands.execute('increment', { id: 'shared' }, { actor, source: `child-${process.pid}` }));
  }
}
await Promise.all(Array.from({ length: Number(inFlightText) }, worker));
const count = (status: string) => results.filter((r) => r.status === status).length;
console.log(JSON.stringify({ ok: count('ok'), conflict: count('conflict'), other: results.length - count('ok') - count('conflict'), attempts: results.map((r) => ('attempts' in r ? r.attempts : 0)) }));
await log.close();
