/**
 * The second process of examples/live-projection.ts: it opens the same store and appends order
 * events, one every 150 ms, while the first process follows them. Run that example, not this file:
 *
 *   npx tsx examples/live-projection.ts
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { openLog, type Identity, type Operation } from 'coherence';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: live-writer.ts <store directory>');

const steps: [order: number, reason: string, patch: Operation[]][] = [
  [1, 'placed', [{ op: 'add', path: '/status', value: 'placed' }, { op: 'add', path: '/items', value: ['Neuromancer'] }]],
  [2, 'placed', [{ op: 'add', path: '/status', value: 'placed' }, { op: 'add', path: '/items', value: ['Dune', 'Emma'] }]],
  [1, 'paid', [{ op: 'replace', path: '/status', value: 'paid' }]],
  [3, 'placed', [{ op: 'add', path: '/status', value: 'placed' }, { op: 'add', path: '/items', value: ['Ubik'] }]],
  [2, 'paid', [{ op: 'replace', path: '/status', value: 'paid' }]],
  [1, 'shipped', [{ op: 'replace', path: '/status', value: 'shipped' }]],
];

const log = await openLog({ path });
try {
  for (const [id, reason, patch] of steps) {
    const order: Identity = ['order', id];
    // The head that state() reports is the base for the next append on this order.
    const { head } = await log.state(order);
    const result = await log.append([{ source: 'shop', action: { reason, actor: ['shop', 'web'], aggregate: order, patch } }], { base: head });
    if (result.status !== 'ok') throw new Error(`expected the append to go through, got ${result.status}`);
    console.log(`  writer (pid ${process.pid}): #${result.events[0]?.seq} order ${id} ${reason}`);
    await sleep(150);
  }
} finally {
  await log.close();
}
