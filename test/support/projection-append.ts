/**
 * Child of the follow tests: appends on command, from outside the test's process.
 * Arguments: path. Reads stdin lines "append <order id> <total>" (prints "appended <seq>") and
 * "exit" (closes the log and ends).
 */
import { createInterface } from 'node:readline';
import { openLog } from '../../src/index.ts';

const [path] = process.argv.slice(2) as [string];
const log = await openLog({ path });
console.log('ready');
const input = createInterface({ input: process.stdin });
for await (const line of input) {
  const [command, id, total] = line.split(' ');
  if (command === 'exit') break;
  const result = await log.append(
    [{ source: 'child', action: { reason: 'order', actor: ['user', 'child'], aggregate: ['order', Number(id)], patch: [{ op: 'add', path: '/total', value: Number(total) }] } }],
    { base: await log.head() },
  );
  if (result.status !== 'ok') throw new Error(`expected ok, got ${result.status}`);
  console.log(`appended ${result.events[0]?.seq}`);
}
input.close();
process.stdin.destroy();
await log.close();
