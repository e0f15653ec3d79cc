/**
 * Child of the follow tests: follows the projection "followed" until it reaches a seq, then
 * either stops following and closes the log ("stop"), or closes the log without stopping
 * ("forget"). Either way it then simply returns: the process must end by itself.
 * Arguments: path, mode, seq. Prints "following", "seen <position>", then "closed".
 */
import { openLog } from '../../src/index.ts';

const [path, mode, target] = process.argv.slice(2) as [string, 'stop' | 'forget', string];
const log = await openLog({ path });
const followed = log.projection('followed');
const stop = followed.follow();
console.log('following');
let position = await followed.position();
while (position < Number(target)) {
  await new Promise((resolve) => setTimeout(resolve, 5));
  position = await followed.position();
}
console.log(`seen ${position}`);
if (mode === 'stop') await stop();
await log.close();
console.log('closed');
