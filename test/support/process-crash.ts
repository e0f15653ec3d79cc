/**
 * Child of the process manager crash tests: loads, waits for "go" on stdin, then catches up the
 * fulfilment manager of the store and reports. The parent kills it with SIGKILL at random
 * moments, or runs two at once. Arguments: path. Prints "loaded", "start <position>", "done <result>".
 */
import { openLog } from '../../src/index.ts';
import { fulfilment } from './reaction-fixtures.ts';
import { loadedThenGo } from './go.ts';

const [path] = process.argv.slice(2) as [string];
await loadedThenGo();

const log = await openLog({ path });
try {
  const manager = fulfilment(log);
  console.log(`start ${await manager.position()}`);
  const result = await manager.catchUp();
  console.log(`done ${JSON.stringify(result)}`);
} finally {
  await log.close();
}
