/**
 * Child: shreds one key of the store (no master key needed) and prints the effect.
 * Arguments: path, key identity as JSON.
 */
import { openLog, type Identity } from '../../src/index.ts';

const [path, key] = process.argv.slice(2) as [string, string];
const log = await openLog({ path });
try {
  const effect = await log.keys.shred(JSON.parse(key) as Identity);
  console.log(`result ${JSON.stringify(effect)}`);
} finally {
  await log.close();
}
