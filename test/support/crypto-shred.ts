/**
 * Child: shreds one key of the store (no master key needed) and prints the effect.
 * Arguments: path, key identity as JSON.
 */
import type { Identity } from '../../src/index.ts';
import { openTarget } from './store-target.ts';

const [path, key] = process.argv.slice(2) as [string, string];
const log = await openTarget(path);
try {
  const effect = await log.keys.shred(JSON.parse(key) as Identity);
  console.log(`result ${JSON.stringify(effect)}`);
} finally {
  await log.close();
}
