/**
 * The coherence demo: the whole story on one embedded store, in a few seconds.
 *
 *   1. Alice and Bob change the same book from the same view: Bob gets the conflict and resolves it.
 *   2. Two editors change different parts of one document: the disjoint-path merge lets both in.
 *   3. Receipts store card numbers encrypted under per-customer keys that live 30 days.
 *   4. A simulated month passes: the keys expire, the projection forgets the card numbers, the
 *      log still verifies, compaction rewrites the store, and a byte scan of its files finds no
 *      card number (while it does find the receipts' plain text, so the scan is real).
 *
 *   npm run demo                  (uses ./data/demo, recreated on every run)
 *   npx tsx examples/demo.ts /some/dir
 *
 * It exits non-zero if anything it claims does not hold.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openLog, type AppendResult, type Identity, type LogEvent, type NewAction, type Operation } from 'coherence';

const path = process.argv[2] ?? './data/demo';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });

// A clock we can move: the log takes its timestamps and decides key expiry by it.
const DAY = 24 * 60 * 60 * 1000;
let now = new Date('2025-03-01T09:00:00Z');

// A demo master key. A real application loads it from a secrets manager, a KMS or the
// COHERENCE_MASTER_KEY environment variable (64 hex characters), never from the store directory.
const log = await openLog({
  path,
  masterKey: randomBytes(32),
  keyTtl: { days: 30 },        // keys created by encrypting live 30 days
  redact: () => '[erased]',    // what readers see where a key is gone (default: null)
  clock: () => now,
});

const heading = (title: string) => console.log(`\n${title}\n${'-'.repeat(title.length)}`);
const step = (text: string) => console.log(`  ${text}`);
/** Throws unless `condition` holds: the demo must not claim what is not true. */
function check(condition: boolean, claim: string): asserts condition {
  if (!condition) throw new Error(`demo: expected ${claim}`);
}
function written(result: AppendResult): LogEvent[] {
  check(result.status === 'ok', `the append to succeed, got ${result.status}`);
  return result.events;
}
const seqs = (events: LogEvent[]) => events.length === 1 ? `#${events[0]?.seq}` : `#${events[0]?.seq}-#${events.at(-1)?.seq}`;
const action = (actor: Identity, aggregate: Identity, reason: string, patch: Operation[]): NewAction => ({
  source: 'demo', action: { reason, actor, aggregate, patch },
});

console.log(`coherence demo, store in ${path}`);

try {
  // 1. ---------------------------------------------------------------------------------------
  heading('1. Alice and Bob change the same book');
  const book: Identity = ['book', 'Neuromancer'];
  const alice: Identity = ['user', 'alice'];
  const bob: Identity = ['user', 'bob'];
  written(await log.append([action(alice, book, 'add the book', [
    { op: 'add', path: '/title', value: 'Neuromancer' },
    { op: 'add', path: '/stock', value: 3 },
  ])], { base: 0 }));
  const seen = await log.state(book);
  step(`Alice and Bob both read the book at #${seen.head}: stock 3.`);
  const sold = written(await log.append([action(alice, book, 'sold one copy', [{ op: 'replace', path: '/stock', value: 2 }])], { base: seen.head }));
  step(`Alice sells a copy: stock 3 -> 2 (${seqs(sold)}).`);
  const restock = await log.append([action(bob, book, 'received two copies', [{ op: 'replace', path: '/stock', value: 5 }])], { base: seen.head });
  check(restock.status === 'conflict', 'Bob\'s stale append to conflict');
  for (const { theirs } of restock.conflicts) {
    step(`Bob writes stock 5 from his view and is refused: #${theirs.seq} ('${'action' in theirs ? theirs.action.reason : theirs.effect.reason}') came first.`);
  }
  // Bob resolves: he adds his two copies to the stock as it is now, naming what he has seen.
  const current = (await log.state(book)).state as { stock: number };
  const resolved = written(await log.append(
    [action(bob, book, 'received two copies', [{ op: 'replace', path: '/stock', value: current.stock + 2 }])],
    { base: seen.head, resolved: restock.conflicts.map((c) => c.theirs.seq) },
  ));
  const stock = ((await log.state(book)).state as { stock: number }).stock;
  check(stock === 4, 'stock 4 after Bob resolves');
  step(`Bob resolves on top of Alice's sale: stock 2 -> ${stock} (${seqs(resolved)}, naming #${restock.conflicts[0]?.theirs.seq} as resolved).`);

  // 2. ---------------------------------------------------------------------------------------
  heading('2. Two editors change one document');
  const handbook: Identity = ['doc', 'handbook'];
  written(await log.append([action(['user', 'ann'], handbook, 'first draft', [
    { op: 'add', path: '/intro', value: 'Welcome to the shop.' },
    { op: 'add', path: '/returns', value: 'Returns within 14 days.' },
  ])], { base: 0 }));
  const draft = await log.state(handbook);
  step(`Ann and Ben both open the handbook at #${draft.head}.`);
  const ann = written(await log.append([action(['user', 'ann'], handbook, 'friendlier intro',
    [{ op: 'replace', path: '/intro', value: 'Welcome! Make yourself at home.' }])], { base: draft.head }));
  step(`Ann rewrites /intro (${seqs(ann)}).`);
  // Ben's view is as old as Ann's was, but he touches another path: the merge lets him in.
  const ben = written(await log.append([action(['user', 'ben'], handbook, 'longer returns',
    [{ op: 'replace', path: '/returns', value: 'Returns within 30 days.' }])], { base: draft.head, merge: 'disjoint-paths' }));
  step(`Ben rewrites /returns from the same view: no common path, merged (${seqs(ben)}).`);
  const doc = (await log.state(handbook)).state as { intro: string; returns: string };
  check(doc.intro.startsWith('Welcome!') && doc.returns.includes('30 days'), 'both edits in the handbook');
  step(`The handbook now has both: "${doc.intro}" / "${doc.returns}"`);

  // 3. ---------------------------------------------------------------------------------------
  heading('3. Receipts with encrypted card numbers');
  const SHOP = 'Corner Bookshop, 12 High Street';
  const cards = { alice: '4111 1111 1111 1111', bob: '5500 0000 0000 0004' };
  const sale = (id: number, customer: 'alice' | 'bob', total: number): NewAction => ({
    ...action(['till', 1], ['receipt', id], 'sale', [
      { op: 'add', path: '/shop', value: SHOP },
      { op: 'add', path: '/customer', value: customer },
      { op: 'add', path: '/total', value: total },
      { op: 'add', path: '/card', value: cards[customer] },
    ]),
    // Only /card is encrypted, under the customer's key (created now, living 30 days).
    encrypt: { key: ['customer', customer], paths: ['/card'] },
  });
  const sales = written(await log.append([sale(1, 'alice', 12.5), sale(2, 'bob', 40), sale(3, 'alice', 7.25)], { base: 0 }));
  step(`Three receipts appended (${seqs(sales)}); /card is encrypted under the customer's key.`);
  for await (const event of log.read({ aggregates: [['receipt', 1]], raw: true })) {
    const stored = 'action' in event ? event.action.patch.find((op) => op.path === '/card') : undefined;
    const envelope = stored !== undefined && 'value' in stored ? stored.value as { envelope: string; key: Identity } : undefined;
    check(envelope?.envelope === 'xchacha20-poly1305', 'the stored card to be an envelope');
    step(`Stored, receipt 1's card is an ${envelope.envelope} envelope under key ${envelope.key.join('/')}.`);
  }
  const receipts = log.projection<{ customer: string; total: number; card: string }>('receipts', { kinds: ['receipt'] });
  await receipts.catchUp();
  const first = await receipts.get(['receipt', 1]);
  check(first?.card === cards.alice, 'the projection to show alice\'s card');
  step(`The receipts projection shows receipt 1: ${first.customer}, ${first.total.toFixed(2)}, card ${first.card}.`);
  const aliceKey = await log.keys.get(['customer', 'alice']);
  step(`Alice's key expires on ${aliceKey?.expiresAt?.toISOString().slice(0, 10)}.`);
  // The projection shows the cards, but keeps its states sealed under the customers' keys.
  const held = scanStore(path, [cards.alice, cards.bob, SHOP]);
  check(cardsIn(held) === 0 && (held.hits.get(SHOP) ?? 0) > 0, 'the projection to keep no readable card at rest');
  step(`A byte scan of the store finds no card number (and the shop's address ${held.hits.get(SHOP)} times): the projection's states are sealed under the customers' keys.`);

  // 4. ---------------------------------------------------------------------------------------
  heading('4. A month later');
  const before = now;
  now = new Date(now.getTime() + 31 * DAY);
  step(`The clock moves on 31 days: ${before.toISOString().slice(0, 10)} -> ${now.toISOString().slice(0, 10)}.`);
  // Past its expiry a key decrypts nothing, even before expire() records it...
  const read = (await log.state(['receipt', 1])).state as { card: string };
  check(read.card === '[erased]', 'an expired key to decrypt nothing');
  check((await receipts.get(['receipt', 1]))?.card === '[erased]', 'the projection\'s sealed copy to open no more');
  step(`The log already reads receipt 1's card as ${read.card}, and so does the projection: its sealed state cannot be opened without the key, so it is folded again on read.`);
  // ...and expire() (or openLog({ autoExpire: true })) appends the effects projections act on.
  const expired = await log.keys.expire();
  check(expired.length === 2, 'both customer keys to expire');
  step(`keys.expire(): ${expired.map((e) => e.effect.trigger.join('/')).join(' and ')} destroyed (effects ${seqs(expired)}).`);
  const { replayed } = await receipts.catchUp();
  const forgotten = [];
  for await (const [, r] of receipts.entries()) forgotten.push(r.card);
  check(forgotten.length === 3 && forgotten.every((card) => card === '[erased]'), 'every card erased in the projection');
  step(`The projection catches up and folds ${replayed} receipts again: every card now reads [erased].`);

  const verified = await log.verify();
  check(verified.ok, 'verify to pass');
  step(`verify: ok, the hash chain over all ${verified.events} events is intact (it covers ciphertext).`);

  // No card number ever reached the files; what compaction removes is the key material (and
  // the old sealed states) left in freed pages.
  const freed = cardsIn(scanStore(path, [cards.alice, cards.bob]));
  check(freed === 0, 'no card number in the store files before compaction either');
  step('Before compaction a byte scan finds no card number either: it never reached the files.');

  const size = () => statSync(join(path, 'data.mdb')).size;
  const sizeBefore = size();
  await log.compact();
  step(`compact: the store is rewritten without free pages (${kb(sizeBefore)} -> ${kb(size())}).`);

  // The proof: every byte of every file in the store directory. The shop's address, stored in
  // the clear on the same receipts, shows that the scan does find what is there.
  const scan = scanStore(path, [cards.alice, cards.bob, SHOP]);
  const shopHits = scan.hits.get(SHOP) ?? 0;
  check(shopHits > 0, 'the scan to find the receipts\' plain text');
  check(cardsIn(scan) === 0, 'no card number left in the store files');
  step(`Byte scan of ${scan.files.join(', ')} (${kb(scan.bytes)}): no card number found; the shop's address found ${shopHits} times.`);
} finally {
  await log.close();
}

// performance.now() counts from process start, so this includes loading the code.
console.log(`\nDone in ${(performance.now() / 1000).toFixed(1)} s.`);

function kb(bytes: number): string {
  return `${Math.round(bytes / 1024)} KB`;
}

function cardsIn(scan: ReturnType<typeof scanStore>): number {
  let total = 0;
  for (const [needle, count] of scan.hits) if (/^[0-9 ]+$/.test(needle)) total += count;
  return total;
}

/** Counts the occurrences of each needle's UTF-8 bytes in every file under `dir`. */
function scanStore(dir: string, needles: string[]) {
  const hits = new Map<string, number>(needles.map((n) => [n, 0]));
  const files: string[] = [];
  let bytes = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const content = readFileSync(join(entry.parentPath, entry.name));
    files.push(entry.name);
    bytes += content.length;
    for (const needle of needles) {
      const pattern = Buffer.from(needle);
      for (let at = content.indexOf(pattern); at !== -1; at = content.indexOf(pattern, at + 1)) hits.set(needle, (hits.get(needle) ?? 0) + 1);
    }
  }
  return { hits, files, bytes };
}
