/**
 * The lending library of examples/library.ts, served over HTTP: its commands and views behind
 * bearer tokens, for two members (alice and bob) and a librarian.
 *
 *   - The librarian acquires books and enrols members; members reserve and return for
 *     themselves only; the librarian may do it for anyone.
 *   - `books` is readable by every member and the librarian; `members` by the librarian, and by
 *     each member for their own record (owner('/name')).
 *   - The event stream and the explorer page at / are the librarian's.
 *
 * As a config for the command line (its default export), serving ./data/library-server (or
 * $LIBRARY_STORE) with tokens signed by $LIBRARY_JWT_SECRET:
 *
 *   npx coherence serve --config examples/library-server.mjs --port 8080
 *
 * Run by itself, it serves a fresh store on a free port and plays a session against it. It
 * imports the package by its name: plain node loads the build (`npm run build` first), tsx the
 * sources.
 *
 *   npx tsx examples/library-server.mjs          (uses ./data/library-server, recreated)
 *   node examples/library-server.mjs /some/dir
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { createCommandService, decider, openLog, RejectedError } from 'coherence';
import { allOf, anyOf, bearer, owner, role, serve } from 'coherence/http';

const LOAN_LIMIT = 2;
const DEV_SECRET = 'library-server example secret, 32+ bytes; set LIBRARY_JWT_SECRET';
const bookOf = (isbn) => ['book', isbn];
const memberOf = (name) => ['member', name];

const acquire = decider({
  name: 'acquire',
  aggregates: ({ isbn }) => [bookOf(isbn)],
  decide({ isbn, title, copies }, states) {
    if (states.get(bookOf(isbn)).title !== undefined) throw new RejectedError('already-in-catalogue');
    return [{ aggregate: bookOf(isbn), reason: 'acquired', patch: [
      { op: 'add', path: '/title', value: title }, { op: 'add', path: '/copies', value: copies }, { op: 'add', path: '/onLoan', value: 0 },
    ] }];
  },
});

const enrol = decider({
  name: 'enrol',
  aggregates: ({ name }) => [memberOf(name)],
  decide: ({ name }) => [{ aggregate: memberOf(name), reason: 'enrolled', patch: [{ op: 'add', path: '/name', value: name }, { op: 'add', path: '/loans', value: {} }] }],
});

const reserve = decider({
  name: 'reserve',
  aggregates: ({ isbn, member }) => [bookOf(isbn), memberOf(member)],
  decide({ isbn, member }, states, { now }) {
    const book = states.get(bookOf(isbn));
    const { loans } = states.get(memberOf(member));
    if (book.title === undefined) throw new RejectedError('unknown-book', { isbn });
    if (loans === undefined) throw new RejectedError('not-a-member', { member });
    if (loans[isbn] !== undefined) throw new RejectedError('already-borrowed', { isbn });
    if (Object.keys(loans).length >= LOAN_LIMIT) throw new RejectedError('limit-reached', { limit: LOAN_LIMIT });
    if (book.onLoan >= book.copies) throw new RejectedError('no-copies', { copies: book.copies });
    const due = new Date(now.getTime() + 14 * 86_400_000).toISOString().slice(0, 10);
    return [
      { aggregate: bookOf(isbn), reason: 'lent', patch: [{ op: 'test', path: '/onLoan', value: book.onLoan }, { op: 'replace', path: '/onLoan', value: book.onLoan + 1 }] },
      { aggregate: memberOf(member), reason: 'borrowed', patch: [{ op: 'add', path: `/loans/${isbn}`, value: due }] },
    ];
  },
});

const giveBack = decider({
  name: 'return',
  aggregates: ({ isbn, member }) => [bookOf(isbn), memberOf(member)],
  decide({ isbn, member }, states) {
    if (states.get(memberOf(member)).loans?.[isbn] === undefined) throw new RejectedError('not-borrowed', { isbn });
    return [
      { aggregate: bookOf(isbn), reason: 'returned', patch: [{ op: 'replace', path: '/onLoan', value: states.get(bookOf(isbn)).onLoan - 1 }] },
      { aggregate: memberOf(member), reason: 'returned', patch: [{ op: 'remove', path: `/loans/${isbn}` }] },
    ];
  },
});

/** A member acting for themselves: the command's `member` is the actor's id. */
const forThemselves = ({ actor, command }) => command?.member === actor.id[1];

/** What `serve` needs for the library on `log`, tokens signed with `secret`. */
export function libraryServer(log, secret) {
  const commands = createCommandService(log, { deciders: [acquire, enrol, reserve, giveBack] });
  const librarian = role('librarian');
  const lending = { service: commands, allow: anyOf(librarian, allOf(role('member'), forThemselves)) };
  return {
    authenticate: bearer({ secret }),
    commands: {
      acquire: { service: commands, allow: librarian },
      enrol: { service: commands, allow: librarian },
      reserve: lending,
      return: lending,
    },
    views: {
      books: { projection: log.projection('books', { kinds: ['book'] }), allow: anyOf(role('member'), librarian) },
      members: { projection: log.projection('members', { kinds: ['member'] }), allow: anyOf(librarian, owner('/name')) },
    },
    events: { allow: librarian },
    explorer: { allow: librarian },
  };
}

/** The config of `coherence serve --config examples/library-server.mjs`. */
export default async function config() {
  const log = await openLog({ path: process.env.LIBRARY_STORE ?? './data/library-server' });
  return { log, ...libraryServer(log, process.env.LIBRARY_JWT_SECRET ?? DEV_SECRET) };
}

/** A session over HTTP against a fresh store: what a front end would send. */
async function main(path) {
  // Start from a fresh store, but never wipe a directory that holds something else.
  if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
    throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
  }
  rmSync(path, { recursive: true, force: true });
  const log = await openLog({ path });
  const server = await serve(log, libraryServer(log, DEV_SECRET));
  const sign = (sub, roles) => new SignJWT({ roles }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('10m').sign(new TextEncoder().encode(DEV_SECRET));
  const tokens = { alice: await sign('alice', ['member']), bob: await sign('bob', ['member']), librarian: await sign('ada', ['librarian']) };
  const send = async (who, method, path, body, headers = {}) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(who === undefined ? {} : { authorization: `Bearer ${tokens[who]}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, etag: response.headers.get('etag'), replayed: response.headers.get('idempotent-replayed'), body: await response.json() };
  };
  const told = ({ status, body }) => (status === 200 && body.events !== undefined ? `200, #${body.events.map((e) => e.seq).join(', #')}` : `${status} ${body.error ?? ''}${body.reason === undefined ? '' : ` (${body.reason})`}`);
  try {
    console.log(`serving on ${server.url}`);
    for (const [isbn, title, copies] of [['978-0441569595', 'Neuromancer', 1], ['978-0441172719', 'Dune', 2]]) {
      console.log(`librarian acquires ${title}: ${told(await send('librarian', 'POST', '/commands/acquire', { isbn, title, copies }))}`);
    }
    for (const name of ['alice', 'bob']) console.log(`librarian enrols ${name}: ${told(await send('librarian', 'POST', '/commands/enrol', { name }))}`);
    console.log(`bob enrols himself as a librarian would: ${told(await send('bob', 'POST', '/commands/enrol', { name: 'eve' }))}`);
    console.log(`nobody signed in reserves: ${told(await send(undefined, 'POST', '/commands/reserve', { isbn: '978-0441569595', member: 'alice' }))}`);
    console.log(`bob reserves Neuromancer for alice: ${told(await send('bob', 'POST', '/commands/reserve', { isbn: '978-0441569595', member: 'alice' }))}`);
    const key = { 'idempotency-key': 'alice-phone/17' };
    console.log(`alice reserves Neuromancer: ${told(await send('alice', 'POST', '/commands/reserve', { isbn: '978-0441569595', member: 'alice' }, key))}`);
    const again = await send('alice', 'POST', '/commands/reserve', { isbn: '978-0441569595', member: 'alice' }, key);
    console.log(`her phone sends it again under the same key: ${told(again)}, replayed: ${again.replayed}`);
    console.log(`bob reserves Neuromancer: ${told(await send('bob', 'POST', '/commands/reserve', { isbn: '978-0441569595', member: 'bob' }))}`);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the views follow the log
    const dune = await send('bob', 'GET', '/views/books/book/978-0441172719');
    console.log(`bob reads Dune: ${dune.status}, ${dune.body.state.onLoan} of ${dune.body.state.copies} on loan, ETag ${dune.etag}`);
    console.log(`alice borrows Dune meanwhile: ${told(await send('alice', 'POST', '/commands/reserve', { isbn: '978-0441172719', member: 'alice' }))}`);
    const stale = await send('bob', 'POST', '/commands/reserve', { isbn: '978-0441172719', member: 'bob' }, { 'if-match': dune.etag });
    console.log(`bob reserves Dune on what he read (If-Match ${dune.etag}): ${told(stale)}, theirs #${stale.body.conflicts.map((c) => c.theirs.seq).join(', #')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    console.log(`alice reads her own record: ${(await send('alice', 'GET', '/views/members/member/alice')).status}; bob reads alice's: ${(await send('bob', 'GET', '/views/members/member/alice')).status}`);
    const members = await send('librarian', 'GET', '/views/members');
    console.log(`the librarian lists members: ${members.body.entries.map((e) => `${e.state.name} (${Object.keys(e.state.loans).length} loan(s))`).join(', ')}`);
    console.log(`bob opens the explorer: ${(await send('bob', 'GET', '/explorer/summary')).status}; the librarian: ${(await send('librarian', 'GET', '/explorer/summary')).status}`);
    const verified = await log.verify();
    console.log(`verify: ${verified.ok ? `ok, ${verified.events} events` : `failed at ${verified.seq}`}`);
  } finally {
    await server.close();
    await log.close();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv[2] ?? './data/library-server');
