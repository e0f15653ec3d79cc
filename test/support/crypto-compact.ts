/**
 * Child: compacts the store. Says `compacting` right before it starts and `result` when done, so
 * a test can kill it in the middle. Arguments: path.
 */
import { openLog } from '../../src/index.ts';

const [path] = process.argv.slice(2) as [string];
const log = await openLog({ path });
console.log('compacting');
await log.compact();
await log.close();
console.log('result "compacted"');
