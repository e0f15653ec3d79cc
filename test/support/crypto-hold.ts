/**
 * Child: opens the store (no master key needed), says `open`, and keeps it open until its stdin
 * ends; then closes it and exits.
 */
import { openLog } from '../../src/index.ts';

const [path] = process.argv.slice(2) as [string];
const log = await openLog({ path });
await log.head();
console.log('open');
process.stdin.resume();
process.stdin.on('end', () => {
  void log.close().then(() => console.log('result "closed"'));
});
