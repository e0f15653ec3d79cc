/**
 * A lending library on deciders and the command service: nobody hand-writes the read, decide,
 * append and retry loop.
 *
 *   - `reserve` and `return` each decide on two aggregates, the book and the member, read at one
 *     head; a member may hold at most two loans.
 *   - Alice and Bob reserve the same book at the same moment: the service meets the conflict
 *     for whoever comes second and decides again on the book as it is now. No copy is lent twice.
 *   - A command the rules refuse is `rejected`, and writes nothing.
 *   - A return sent twice under one idempotency key (the answer to the first was lost) takes
 *     effect once: the repeat is `duplicate`, with the events of the first.
 *
 *   npx tsx examples/library.ts             (uses ./data/library, recreated on every run)
 *   npx tsx examples/library.ts /some/dir
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { addDays } from 'date-fns';
import { createCommandService, decider, openLog, RejectedError, type CommandResult, type Identity } from '../src/index.ts';

const path = process.argv[2] ?? './data/library';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });
const log = await openLog({ path });

const LOAN_LIMIT = 2;
interface Book { title?: string; copies?: number; onLoan?: number }
interface Member { name?: string; loans?: Record<string, string> } // isbn -> due date
interface Loan { isbn: string; member: string }
const bookOf = (isbn: string): Identity => ['book', isbn];
const memberOf = (name: string): Identity => ['member', name];

const acquire = decider<{ isbn: string; title: string; copies: number }>({
  name: 'acquire',
  aggregates: ({ isbn }) => [bookOf(isbn)],
  decide({ isbn, title, copies }, states) {
    if ((states.get(bookOf(isbn)) as Book).title !== undefined) throw new RejectedError('already-in-catalogue');
    return [{ aggregate: bookOf(isbn), reason: 'acquired', patch: [
      { op: 'add', path: '/title', value: title }, { op: 'add', path: '/copies', value: copies }, { op: 'add', path: '/onLoan', value: 0 },
    ] }];
  },
});

const enrol = decider<{ name: string }>({
  name: 'enrol',
  aggregates: ({ name }) => [memberOf(name)],
  decide: ({ name }) => [{ aggregate: memberOf(name), reason: 'enrolled', patch: [{ op: 'add', path: '/name', value: name }, { op: 'add', path: '/loans', value: {} }] }],
});

const reserve = decider<Loan>({
  name: 'reserve',
  aggregates: ({ isbn, member }) => [bookOf(isbn), memberOf(member)],
  decide({ isbn, member }, states, { now }) {
    const book = states.get(bookOf(isbn)) as Book;
    const { loans } = states.get(memberOf(member)) as Member;
    if (book.title === undefined) throw new RejectedError('unknown-book', { isbn });
    if (loans === undefined) throw new RejectedError('not-a-member', { member });
    if (loans[isbn] !== undefined) throw new RejectedError('already-borrowed', { isbn });
    if (Object.keys(loans).length >= LOAN_LIMIT) throw new RejectedError('limit-reached', { loans: Object.keys(loans).length, limit: LOAN_LIMIT });
    const onLoan = book.onLoan ?? 0;
    if (onLoan >= (book.copies ?? 0)) throw new RejectedError('no-copies', { copies: book.copies });
    return [
      // The `test` reads /onLoan, so even under merge: 'disjoint-paths' a change to it conflicts.
      { aggregate: bookOf(isbn), reason: 'lent', patch: [{ op: 'test', path: '/onLoan', value: onLoan }, { op: 'replace', path: '/onLoan', value: onLoan + 1 }] },
      { aggregate: memberOf(member), reason: 'borrowed', patch: [{ op: 'add', path: `/loans/${isbn}`, value: addDays(now, 14).toISOString().slice(0, 10) }] },
    ];
  },
});

const giveBack = decider<Loan>({
  name: 'return',
  aggregates: ({ isbn, member }) => [bookOf(isbn), memberOf(member)],
  decide({ isbn, member }, states) {
    const book = states.get(bookOf(isbn)) as Book;
    if ((states.get(memberOf(member)) as Member).loans?.[isbn] === undefined) throw new RejectedError('not-borrowed', { isbn });
    return [
      { aggregate: bookOf(isbn), reason: 'returned', patch: [{ op: 'replace', path: '/onLoan', value: (book.onLoan ?? 1) - 1 }] },
      { aggregate: memberOf(member), reason: 'returned', patch: [{ op: 'remove', path: `/loans/${isbn}` }] },
    ];
  },
});

const commands = createCommandService(log, { deciders: [acquire, enrol, reserve, giveBack] });
const desk = (member: string) => ({ actor: memberOf(member), source: 'library-desk' });
const librarian = { actor: ['staff', 'librarian'] as Identity, source: 'catalogue' };
const NEUROMANCER = '978-0441569595';
const DUNE = '978-0441172719';
const SOLARIS = '978-0156027601';

/** One line about a result: `ok #7 (1 attempt)`, `rejected (no-copies)`, ... */
function told(result: CommandResult): string {
  switch (result.status) {
    case 'ok': return `ok #${result.events.map((e) => e.seq).join(', #')} (${result.attempts} attempt${result.attempts === 1 ? '' : 's'})`;
    case 'rejected': return `rejected (${result.reason}${result.details === undefined ? '' : ` ${JSON.stringify(result.details)}`})`;
    case 'conflict': return `conflict after ${result.attempts} attempts`;
    case 'duplicate': return `duplicate: nothing written, the events of the first were #${result.events.map((e) => e.seq).join(', #')}`;
    case 'invalid-base': return `invalid base (head ${result.head})`;
  }
}
function expectStatus(result: CommandResult, status: CommandResult['status'], what: string): void {
  if (result.status !== status) throw new Error(`${what}: expected ${status}, got ${told(result)}`);
}

try {
  for (const [isbn, title, copies] of [[NEUROMANCER, 'Neuromancer', 2], [DUNE, 'Dune', 1], [SOLARIS, 'Solaris', 1]] as const) {
    expectStatus(await commands.execute('acquire', { isbn, title, copies }, librarian), 'ok', `acquire ${title}`);
  }
  for (const name of ['alice', 'bob']) expectStatus(await commands.execute('enrol', { name }, desk(name)), 'ok', `enrol ${name}`);
  console.log(`Catalogue: Neuromancer (2 copies), Dune (1), Solaris (1). Members alice and bob, ${LOAN_LIMIT} loans each at most.`);

  // Alice and Bob reserve Neuromancer at the same moment: both read the book at the same head.
  const [byAlice, byBob] = await Promise.all([
    commands.execute('reserve', { isbn: NEUROMANCER, member: 'alice' }, desk('alice')),
    commands.execute('reserve', { isbn: NEUROMANCER, member: 'bob' }, desk('bob')),
  ]);
  console.log(`Alice and Bob reserve Neuromancer at once: alice ${told(byAlice)}, bob ${told(byBob)}`);
  expectStatus(byAlice, 'ok', "alice's reservation");
  expectStatus(byBob, 'ok', "bob's reservation");
  const [first, second] = byAlice.status === 'ok' && byAlice.attempts === 1 ? ['alice', 'bob'] : ['bob', 'alice'];
  const decidedAgain = [byAlice, byBob].some((r) => r.status === 'ok' && r.attempts > 1);
  if (decidedAgain) console.log(`The service met ${first}'s loan in ${second}'s way and decided ${second}'s reservation again on the book as it is now.`);
  const neuromancer = (await log.state(bookOf(NEUROMANCER))).state as Book;
  console.log(`Neuromancer: ${neuromancer.onLoan} of ${neuromancer.copies} copies on loan`);

  const dune = await commands.execute('reserve', { isbn: DUNE, member: 'alice' }, desk('alice'));
  console.log(`Alice reserves Dune: ${told(dune)}`);
  const solaris = await commands.execute('reserve', { isbn: SOLARIS, member: 'alice' }, desk('alice'));
  console.log(`Alice reserves Solaris: ${told(solaris)}`);
  expectStatus(solaris, 'rejected', "alice's third loan");
  const noCopy = await commands.execute('reserve', { isbn: DUNE, member: 'bob' }, desk('bob'));
  console.log(`Bob reserves Dune: ${told(noCopy)}`);
  expectStatus(noCopy, 'rejected', "bob's reservation of a lent book");

  // Alice returns Dune; the desk never hears back and sends the same return again, same key.
  const key = 'desk-7/return/4711';
  const returned = await commands.execute('return', { isbn: DUNE, member: 'alice' }, { ...desk('alice'), idempotencyKey: key });
  console.log(`Alice returns Dune: ${told(returned)}`);
  const retried = await commands.execute('return', { isbn: DUNE, member: 'alice' }, { ...desk('alice'), idempotencyKey: key });
  console.log(`The desk sends the return again under the same key: ${told(retried)}`);
  expectStatus(retried, 'duplicate', 'the repeated return');
  const duneNow = (await log.state(bookOf(DUNE))).state as Book;
  const alice = (await log.state(memberOf('alice'))).state as Member;
  console.log(`Dune: ${duneNow.onLoan} of ${duneNow.copies} on loan; alice holds ${Object.keys(alice.loans ?? {}).length} loan(s)`);
  if (duneNow.onLoan !== 0) throw new Error('Dune was returned once: expected none on loan');

  const verified = await log.verify();
  if (!verified.ok) throw new Error(`verify failed at ${verified.seq}: ${verified.reason}`);
  console.log(`verify: ok, ${verified.events} events`);
} finally {
  await log.close();
}
