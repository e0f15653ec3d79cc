/**
 * Child: shreds one key of the store, says `shredded`, then hangs without closing the log, to be
 * SIGKILLed before any projection catches up. Arguments: path, key identity as JSON.
 */
import { openLog, type Identity } from '../../src/index.ts';

const [path, key] = process.argv.slice(2) as [string, string];
const log = await openLog({ path });
await log.keys.shred(JSON.parse(key) as Identity);
console.log('shredded');
setInterval(() => {}, 1000);
