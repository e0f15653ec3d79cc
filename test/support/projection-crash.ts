/**
 * Child of the crash test: loads, waits for "go" on stdin, then catches up the tally projection
 * of the store and reports. The parent kills it with SIGKILL at a random moment of the catch-up.
 * Arguments: path, master key (hex). Prints "loaded", "start <position>", "done <ms> <result>".
 */
import { openLog } from '../../src/index.ts';
import { loadedThenGo } from './go.ts';
import { tallyOptions } from './projection-tally.ts';

const [path, masterKey] = process.argv.slice(2) as [string, string];
await loadedThenGo();

const log = await openLog({ path, masterKey });
try {
  const tally = log.projection('tally', tallyOptions);
  console.log(`start ${await tally.position()}`);
  const started = performance.now();
  const result = await tally.catchUp();
  console.log(`done ${Math.round(performance.now() - started)} ${JSON.stringify(result)}`);
} finally {
  await log.close();
}
