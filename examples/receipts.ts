/**
 * Receipts: card numbers are stored encrypted under one key per customer. Shredding a customer's
 * key erases their card numbers everywhere at once: the log redacts them, and the `receipts`
 * projection, when it catches up, folds that customer's receipts again and forgets them too.
 * The rest of the log is untouched and still verifies.
 *
 *   npx tsx examples/receipts.ts             (uses ./data/receipts, recreated on every run)
 *   npx tsx examples/receipts.ts /some/dir
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openLog, type Identity, type NewAction } from 'coherence';

const path = process.argv[2] ?? './data/receipts';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });

// The master key wraps every customer key. A real application never generates it at start-up:
// it loads it from a secrets manager or KMS, or from the environment (64 hex characters in
// COHERENCE_MASTER_KEY), and keeps it out of the store directory and its backups. Lose it and
// every encrypted value is gone; open the store with another one and you get WrongMasterKeyError.
const masterKey = process.env.COHERENCE_MASTER_KEY ?? randomBytes(32);
const log = await openLog({ path, masterKey, redact: () => '[erased]' });

interface Receipt { customer: string; total: number; card: string }
const customer = (name: string): Identity => ['customer', name];

/** One receipt: the card number is encrypted under the customer's key; the rest stays readable. */
const receipt = (id: number, { customer: name, total, card }: Receipt): NewAction => ({
  source: 'till-3',
  action: {
    reason: 'sale',
    actor: ['till', 3],
    aggregate: ['receipt', id],
    patch: [
      { op: 'add', path: '/customer', value: name },
      { op: 'add', path: '/total', value: total },
      { op: 'add', path: '/card', value: card },
    ],
  },
  // The key is created on first use; its identity becomes a trigger of the action, so shredding
  // it affects exactly the receipts it encrypted.
  encrypt: { key: customer(name), paths: ['/card'] },
});

const ALICE_CARD = '4111 1111 1111 1111';
const BOB_CARD = '5500 0000 0000 0004';

try {
  await log.append([
    receipt(1, { customer: 'alice', total: 12.5, card: ALICE_CARD }),
    receipt(2, { customer: 'bob', total: 40, card: BOB_CARD }),
    receipt(3, { customer: 'alice', total: 7.25, card: ALICE_CARD }),
  ], { base: 0 });
  console.log('Appended 3 receipts; card numbers are encrypted under one key per customer.');

  // What the storage holds: an envelope, not the card number.
  for await (const event of log.read({ aggregates: [['receipt', 1]], raw: true })) {
    if ('action' in event) console.log('Stored form of receipt 1\'s card:', JSON.stringify(event.action.patch[2]));
  }

  const receipts = log.projection<Partial<Receipt>>('receipts', { kinds: ['receipt'] });
  await receipts.catchUp();
  const show = async (title: string) => {
    console.log(title);
    for await (const [[, id], r] of receipts.entries()) console.log(`  receipt ${id}: ${r.customer}, ${r.total}, card ${r.card}`);
  };
  await show('The receipts projection:');

  // Alice asks to be forgotten: destroy her key. The key material is gone and an effect is
  // appended in the same transaction, so every reader learns of it.
  const effect = await log.keys.shred(customer('alice'), { reason: 'erasure request' });
  console.log(`Shredded alice's key: effect #${effect.seq} (${effect.effect.reason}).`);

  // Catching up meets the effect and folds alice's receipts again, now without her key.
  const { replayed } = await receipts.catchUp();
  console.log(`Caught up: ${replayed} receipt action(s) folded again.`);
  await show('The receipts projection now:');

  const one = await receipts.get(['receipt', 1]);
  const two = await receipts.get(['receipt', 2]);
  if (one?.card !== '[erased]' || two?.card !== BOB_CARD) throw new Error('expected alice\'s card erased and bob\'s intact');
  const { state } = await log.state(['receipt', 3]);
  if ((state as Receipt).card !== '[erased]') throw new Error('expected the log to redact alice\'s card');
  console.log('The log itself reads receipt 3 with card', (state as Receipt).card);

  // The hash chain covers the ciphertext, which is still there: erasure does not break it.
  const verified = await log.verify();
  if (!verified.ok) throw new Error(`verify failed at ${verified.seq}: ${verified.reason}`);
  console.log(`verify: ok, ${verified.events} events.`);

  // Compaction rewrites the store file, so neither the destroyed key nor the projection's old
  // pages (which held alice's card in plaintext) survive in free space.
  await log.compact();
  console.log('compact: done; no copy of the destroyed key or of the old projection pages remains.');
} finally {
  await log.close();
}
