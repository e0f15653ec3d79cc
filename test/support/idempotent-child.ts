/**
 * Child of test/idempotency.test.ts: one keyed write to the store at `path`, once told to.
 *
 *   node --import tsx idempotent-child.ts <path> <append|execute> <key>
 *
 * Prints `ready` once the store is open; on a line on stdin, appends one increment of
 * ['counter', 'shared'] under the key (`append`: log.append based on the head; `execute`: the
 * increment decider through a command service) and prints the result as one JSON line. Then it
 * waits for stdin to close before closing the log, so the parent may SIGKILL it in between.
 */
import { createInterface } from 'node:readline';
import { createCommandService, openLog } from '../../src/index.ts';
import { actor, deciders } from './command-fixtures.ts';

const [path, mode, key] = process.argv.slice(2);
if (path === undefined || (mode !== 'append' && mode !== 'execute') || key === undefined) throw new Error('usage: idempotent-child.ts <path> <append|execute> <key>');

const log = await openLog({ path });
const commands = createCommandService(log, { deciders, retry: { attempts: 20, minDelayMs: 1, maxDelayMs: 20 } });
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
console.log('ready');
await lines.next();
const result = mode === 'execute'
  ? await commands.execute('increment', { id: 'shared' }, { actor, source: `child-${process.pid}`, idempotencyKey: key })
  : await log.append([{ source: `child-${process.pid}`, action: { reason: 'increment', actor, aggregate: ['counter', 'shared'], patch: [{ op: 'add', path: '/n', value: 1 }] } }], { base: await log.head(), idempotencyKey: key });
console.log(JSON.stringify(result));
for (;;) if ((await lines.next()).done === true) break;
input.close();
await log.close();
