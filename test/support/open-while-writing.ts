/**
 * Child: opens a log, then 20 times over puts an asynchronous transaction in flight (two appends
 * in one turn) and, while it is, opens a second log on the same store and closes it. Prints
 * `opened 20` and exits. lmdb-js opens a store's databases in a write transaction, which waits
 * for the one in flight, whose callbacks wait for this thread: opened at that moment, the
 * process would hang (the test runs it here to see it end). Argument: path.
 */
import { openLog, type NewEvent } from '../../src/index.ts';

const [path] = process.argv.slice(2) as [string];
const log = await openLog({ path });
const event = (n: number): NewEvent => ({ source: 'child', action: { reason: 'r', actor: ['user', 'u'], aggregate: ['order', n], patch: [{ op: 'add', path: '/n', value: n }] } });
let opened = 0;
for (let round = 0; round < 20; round++) {
  const head = await log.head();
  const writes = [log.append([event(2 * round)], { base: head }), log.append([event(2 * round + 1)], { base: head })];
  // The engine hands the turn's writes to lmdb-js on the next one, which starts its write
  // thread on the one after; then, without giving the event loop a turn, the write thread
  // begins the transaction and asks this thread for its callbacks.
  for (let turn = 0; turn < 1 + (round % 3); turn++) await new Promise((resolve) => setImmediate(resolve));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  const other = await openLog({ path });
  opened++;
  await other.close();
  await Promise.all(writes);
}
await log.close();
console.log(`opened ${opened}`);
