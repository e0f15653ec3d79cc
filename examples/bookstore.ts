/**
 * The bookstore: Alice and Bob change the same book from the same view of the log. Bob's append
 * comes second, so he gets the conflict with both sides, resolves it, and appends again.
 *
 *   npx tsx examples/bookstore.ts             (uses ./data/bookstore, recreated on every run)
 *   npx tsx examples/bookstore.ts /some/dir
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openLog, type Identity, type NewAction } from 'coherence';

const path = process.argv[2] ?? './data/bookstore';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });
const log = await openLog({ path });

const book: Identity = ['book', 'Neuromancer'];
const alice: Identity = ['user', 'alice'];
const bob: Identity = ['user', 'bob'];
const edit = (actor: Identity, reason: string, patch: NewAction['action']['patch']): NewAction => ({
  source: 'bookstore',
  action: { reason, actor, aggregate: book, patch },
});

try {
  await log.append([edit(alice, 'add the book', [
    { op: 'add', path: '/title', value: 'Neuromancer' },
    { op: 'add', path: '/stock', value: 3 },
    { op: 'add', path: '/price', value: 9.99 },
  ])], { base: 0 });

  // Alice and Bob both read the book at the same head...
  const { state, head } = await log.state(book);
  console.log(`Alice and Bob both see (head ${head}):`, state);

  // ...Alice sells one copy first,
  const sold = await log.append([edit(alice, 'sold one copy', [{ op: 'replace', path: '/stock', value: 2 }])], { base: head });
  console.log(`Alice: ${sold.status}, stock 3 -> 2`);

  // ...then Bob, who received two copies and still believes the stock is 3, writes 5.
  const restock = edit(bob, 'received two copies', [{ op: 'replace', path: '/stock', value: 5 }]);
  const first = await log.append([restock], { base: head });
  if (first.status !== 'conflict') throw new Error(`expected a conflict, got ${first.status}`);
  for (const { ours, theirs } of first.conflicts) {
    const who = 'action' in theirs ? theirs.action.actor[1] : 'an effect';
    console.log(`Bob: conflict: his event would have been #${ours.seq}; #${theirs.seq} by ${who} came first:`,
      'action' in theirs ? JSON.stringify(theirs.action.patch) : theirs.effect.reason);
  }

  // Bob resolves: he adds his two copies to what is there now, naming what he has seen.
  const now = await log.state(book);
  const stock = (now.state as { stock: number }).stock;
  const resolved = await log.append(
    [edit(bob, 'received two copies (resolved)', [{ op: 'replace', path: '/stock', value: stock + 2 }])],
    { base: head, resolved: first.conflicts.map((c) => c.theirs.seq) },
  );
  if (resolved.status !== 'ok') throw new Error(`expected Bob's resolved append to go through, got ${resolved.status}`);
  console.log(`Bob: ${resolved.status}, stock ${stock} -> ${stock + 2}`);

  const final = await log.state(book);
  console.log(`Final state (head ${final.head}):`, final.state);
  if ((final.state as { stock: number }).stock !== 4) throw new Error('expected a stock of 4: 3, minus one sold, plus two received');
  const verified = await log.verify();
  if (!verified.ok) throw new Error(`verify failed at ${verified.seq}: ${verified.reason}`);
  console.log(`verify: ok, ${verified.events} events`);
} finally {
  await log.close();
}
