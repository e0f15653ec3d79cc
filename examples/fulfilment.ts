/**
 * Order fulfilment on a process manager and a notifier.
 *
 *   - Customers pay for orders; their e-mail address is encrypted under their own key.
 *   - The process manager `fulfilment` reacts to each payment: it reserves the stock and asks
 *     for shipping (two commands through the command service), keeping the order's progress as
 *     its state. State, commands and the handled mark are one append: it never reserves twice.
 *     When the stock has run out, the reservation is refused and recorded; the manager moves on.
 *   - The notifier `confirmation-mail` sends each customer a confirmation (to a file, here); the
 *     mail server refuses now and then, and the notifier tries again after a pause.
 *   - Carol asks to be forgotten before her mail goes out: her key is shredded. Her mail is never
 *     sent (the notifier reads the event afresh and finds the address erased), the manager's state
 *     of her order and the address on her shipment read as erased, and after compaction no file
 *     of the store holds her address.
 *
 *   npx tsx examples/fulfilment.ts             (uses ./data/fulfilment, recreated on every run)
 *   npx tsx examples/fulfilment.ts /some/dir
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCommandService, createNotifier, createProcessManager, decider, openLog, RejectedError, type Identity, type NewAction } from '../src/index.ts';

const path = process.argv[2] ?? './data/fulfilment';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });
const log = await openLog({ path, masterKey: randomBytes(32), redact: () => '[erased]' });
const outbox = join(path, 'outbox.txt');
writeFileSync(outbox, '');

const customerKey = (name: string): Identity => ['customer', name];
const clerk: Identity = ['user', 'clerk'];

// --- The write side: two deciders --------------------------------------------------------------

interface Stock { count: number }

const reserve = decider<{ sku: string; order: number }>({
  name: 'reserve',
  aggregates: ({ sku }) => [['stock', sku]],
  decide({ sku, order }, states) {
    const { count = 0 } = states.get(['stock', sku]) as Partial<Stock>;
    if (count === 0) throw new RejectedError('out-of-stock', { sku });
    return [{ aggregate: ['stock', sku], reason: 'reserved', patch: [{ op: 'replace', path: '/count', value: count - 1 }, { op: 'add', path: `/orders/${order}`, value: true }] }];
  },
});

const ship = decider<{ order: number; customer: string; address: string }>({
  name: 'ship',
  aggregates: ({ order }) => [['shipment', order]],
  // The address goes on the shipment encrypted under the customer's key, like the order's.
  decide: ({ order, customer, address }) => [{
    aggregate: ['shipment', order], reason: 'requested',
    patch: [{ op: 'add', path: '/status', value: 'requested' }, { op: 'add', path: '/address', value: address }],
    encrypt: { key: customerKey(customer), paths: ['/address'] },
  }],
});

const commands = createCommandService(log, { deciders: [reserve, ship] });

// --- The process manager -----------------------------------------------------------------------

interface Progress { status: 'new' | 'paid'; customer?: string; sku?: string }

const fulfilment = createProcessManager<Progress>(log, 'fulfilment', {
  kinds: ['order'],
  instance: (event) => ('action' in event ? (event.action.aggregate[1] as number) : undefined),
  init: () => ({ status: 'new' }),
  react(state, event) {
    if (!('action' in event) || event.action.reason !== 'paid') return { state };
    const order = event.action.aggregate[1] as number;
    const { customer, sku, email } = Object.fromEntries(event.action.patch.map((op) => [op.path.slice(1), (op as { value: string }).value]));
    return {
      state: { status: 'paid', customer: customer as string, sku: sku as string },
      commands: [
        { name: 'reserve', command: { sku, order } },
        { name: 'ship', command: { order, customer, address: email } },
      ],
    };
  },
  commands,
});

// --- The notifier ------------------------------------------------------------------------------

let refusals = 0;
const mailer = createNotifier(log, 'confirmation-mail', {
  kinds: ['order'],
  retry: { attempts: 4, minDelayMs: 20, maxDelayMs: 200 },
  async handle(event, { attempt, idempotencyKey }) {
    if (!('action' in event) || event.action.reason !== 'paid') return;
    const order = event.action.aggregate[1] as number;
    const email = (event.action.patch.find((op) => op.path === '/email') as { value: string }).value;
    if (email === '[erased]') {
      console.log(`order ${order}: no mail, the address was erased`);
      return;
    }
    // The mail server refuses the first attempt at every other order.
    if (order % 2 === 0 && attempt === 1) {
      refusals++;
      console.log(`mail for order ${order}, attempt ${attempt}: 451 try again later`);
      throw new Error('451 try again later');
    }
    appendFileSync(outbox, `[${idempotencyKey}] to ${email}: order ${order} is confirmed\n`);
  },
});

// --- The story ---------------------------------------------------------------------------------

const stocked = (sku: string, count: number): NewAction => ({
  source: 'warehouse', action: { reason: 'stocked', actor: clerk, aggregate: ['stock', sku], patch: [{ op: 'add', path: '/count', value: count }, { op: 'add', path: '/orders', value: {} }] },
});
const paid = (order: number, customer: string, sku: string): NewAction => ({
  source: 'shop',
  action: { reason: 'paid', actor: ['customer', customer], aggregate: ['order', order], patch: [
    { op: 'add', path: '/customer', value: customer }, { op: 'add', path: '/sku', value: sku }, { op: 'add', path: '/email', value: `${customer}@example.org` },
  ] },
  encrypt: { key: customerKey(customer), paths: ['/email'] },
});

await log.append([stocked('book', 2), stocked('mug', 1)], { base: 0 });
await log.append([paid(1, 'alice', 'book'), paid(2, 'bob', 'mug'), paid(3, 'carol', 'mug')], { base: await log.head() });
console.log(`Three orders paid; the log is at #${await log.head()}.`);

const handled = await fulfilment.catchUp();
console.log(`fulfilment: ${handled.events} payments handled, ${handled.commands} commands appended`);
for await (const { seq, instance, name, reason } of fulfilment.rejections()) console.log(`fulfilment: order ${instance} (#${seq}): ${name} rejected (${reason}), recorded; the manager moved on`);
console.log(`fulfilment again: ${(await fulfilment.catchUp()).commands} commands (every payment was handled once)`);
console.log(`order 3 is at ${JSON.stringify(await fulfilment.get(3))}`);

const forgotten = await log.keys.shred(customerKey('carol'));
console.log(`Carol asks to be forgotten: key customer/carol shredded (#${forgotten.seq})`);

const delivery = await mailer.catchUp();
console.log(`confirmation-mail: ${delivery.delivered} events delivered (the shred's effect on order 3 among them), ${refusals} refused and retried, ${delivery.deadLettered} dead letters`);
process.stdout.write(`outbox:\n${readFileSync(outbox, 'utf8')}`);

console.log(`order 3 now: ${JSON.stringify(await fulfilment.get(3))}; its shipment: ${JSON.stringify((await log.state(['shipment', 3])).state)}`);
const shipments = log.projection('shipments', { kinds: ['shipment'] });
const replay = await shipments.catchUp();
console.log(`shipments projection: ${replay.actions} shipments, ${replay.replayed} replayed after the shred; order 3 ${JSON.stringify(await shipments.get(['shipment', 3]))}`);

const { processManagers, notifiers } = await log.stats();
for (const { name, position, lag, rejections } of processManagers) console.log(`stats: process manager ${name} at #${position}, lag ${lag}, ${rejections} rejection(s)`);
for (const { name, position, lag, deadLetters } of notifiers) console.log(`stats: notifier ${name} at #${position}, lag ${lag}, ${deadLetters} dead letter(s)`);

const verified = await log.verify();
console.log(`verify: ${verified.ok ? `ok, ${verified.events} events` : `broken at #${verified.seq}`}`);
await log.compact();
const carol = Buffer.from('carol@example.org');
const holding = readdirSync(path).filter((name) => name !== 'outbox.txt' && readFileSync(join(path, name)).includes(carol));
console.log(`compact, then a byte scan of the store: carol's address in ${holding.length} file(s)`);
await log.close();
