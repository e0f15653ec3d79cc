/**
 * Child of the process manager crash tests: loads, waits for "go" on stdin, then catches up the
 * fulfilment manager of the store and reports. The parent kills it with SIGKILL at random
 * moments, or runs two at once. Arguments: path. Prints "loaded", "start <position>", "done <result>".
 */
import { createInterface } from 'node:readline';
import { openLog } from '../../src/index.ts';
import { fulfilment } from './reaction-fixtures.ts';

const [path] = process.argv.slice(2) as [string];
const input = createInterface({ input: process.stdin });
console.log('loaded');
await new Promise<void>((resolve) => input.on('line', (line) => line === 'go' && resolve()));
input.close();

const log = await openLog({ path });
try {
  const manager = fulfilment(log);
  console.log(`start ${await manager.position()}`);
  const result = await manager.catchUp();
  console.log(`done ${JSON.stringify(result)}`);
} finally {
  await log.close();
}
