/**
 * A gateway for the HTTP tests: a small library and shared documents on a real LMDB store,
 * served by `serve` on a loopback port, with bearer tokens (HS256) for four actors:
 *   alice, bob   members        lib   the librarian        mallory   no role at all
 *
 * Commands: `register` (librarian) a book; `reserve` (a member, for themselves) a copy of a book
 * for a member; `edit` a document (its owner, or anyone for a new one; `secret` encrypted under
 * the author's key); `comment` on a document (its owner or the librarian), which also writes the
 * document's audit trail, an aggregate only the librarian may see.
 * Views: books (members and the librarian), docs (the owner and the librarian), audit (the
 * librarian). Fact: `count` of books (members). Events and explorer: the librarian.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { createCommandService, decider, RejectedError, type Identity, type Log } from '../../src/index.ts';
import { allOf, anyOf, bearer, owner, role, serve, type Server, type ServeOptions } from '../../src/http/index.ts';
import { afterTest, allEvents, tempLog } from './temp-log.ts';

export const SECRET = 'a test secret that is at least 32 bytes long';

interface Book { title?: string; copies?: number; onLoan?: number }
interface Doc { owner?: string; text?: string; comments?: string[] }

const register = decider<{ isbn: string; title: string; copies: number }>({
  name: 'register',
  aggregates: ({ isbn }) => [['book', isbn]],
  decide: ({ isbn, title, copies }) => [{ aggregate: ['book', isbn], reason: 'registered', patch: [
    { op: 'add', path: '/title', value: title }, { op: 'add', path: '/copies', value: copies }, { op: 'add', path: '/onLoan', value: 0 },
  ] }],
});

const reserve = decider<{ isbn: string; member: string }>({
  name: 'reserve',
  aggregates: ({ isbn, member }) => [['book', isbn], ['member', member]],
  decide({ isbn, member }, states) {
    const book = states.get(['book', isbn]) as Book;
    if (book.title === undefined) throw new RejectedError('unknown-book', { isbn });
    const onLoan = book.onLoan ?? 0;
    if (onLoan >= (book.copies ?? 0)) throw new RejectedError('no-copies', { copies: book.copies ?? 0 });
    return [
      { aggregate: ['book', isbn], reason: 'lent', patch: [{ op: 'replace', path: '/onLoan', value: onLoan + 1 }] },
      { aggregate: ['member', member], reason: 'borrowed', patch: [{ op: 'add', path: `/${isbn}`, value: true }] },
    ];
  },
});

const edit = decider<{ doc: string; text: string; secret?: string; path?: string }>({
  name: 'edit',
  aggregates: ({ doc }) => [['doc', doc]],
  decide({ doc, text, secret, path = '/text' }, states, { actor }) {
    const current = states.get(['doc', doc]) as Doc;
    const patch = [{ op: 'add' as const, path, value: text }];
    if (current.owner === undefined) patch.push({ op: 'add', path: '/owner', value: String(actor[1]) });
    if (secret === undefined) return [{ aggregate: ['doc', doc], reason: 'edited', patch }];
    return [{ aggregate: ['doc', doc], reason: 'edited', patch: [...patch, { op: 'add', path: '/secret', value: secret }], encrypt: { key: actor, paths: ['/secret'] } }];
  },
});

const comment = decider<{ doc: string; text: string }>({
  name: 'comment',
  aggregates: ({ doc }) => [['doc', doc], ['audit', doc]],
  decide: ({ doc, text }, _states, { actor }) => [
    { aggregate: ['doc', doc], reason: 'commented', patch: [{ op: 'add', path: '/comments', value: [text] }] },
    { aggregate: ['audit', doc], reason: 'commented', patch: [{ op: 'add', path: '/last', value: `comment by ${String(actor[1])}` }] },
  ],
});

/** A signed token for `sub` with `roles`, HS256 under SECRET unless told otherwise. */
export async function token(sub: string, roles: string[], options: { expiresIn?: string | number; notBefore?: string | number; secret?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ roles }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt();
  jwt.setExpirationTime(options.expiresIn ?? '1h');
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

export interface App {
  log: Log;
  path: string;
  server: Server;
  url: string;
  tokens: { alice: string; bob: string; lib: string; mallory: string };
  /** Sends a request; `body` objects go as JSON. */
  send(method: string, path: string, options?: { as?: keyof App['tokens'] | undefined; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  /** send, then the status, the headers and the parsed JSON body. */
  call(method: string, path: string, options?: { as?: keyof App['tokens'] | undefined; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: any }>;
  /** Every event of the log (to check that nothing was written). */
  events(): Promise<unknown[]>;
  /** Waits until every view's projection is at the head. */
  settle(): Promise<void>;
}

/** The application above, served; closed and removed after the test. */
export async function startApp(more: Partial<ServeOptions> = {}): Promise<App> {
  const { log, path } = await tempLog({ masterKey: randomBytes(32), redact: () => '[erased]' });
  const commands = createCommandService(log, { deciders: [register, reserve, edit, comment] });
  const books = log.projection('books', { kinds: ['book'] });
  const docs = log.projection('docs', { kinds: ['doc'] });
  const audit = log.projection('audit', { kinds: ['audit'] });
  const self = ({ actor, command }: { actor: { id: Identity }; command?: unknown }) => (command as { member?: unknown } | undefined)?.member === actor.id[1];
  const server = await serve(log, {
    authenticate: bearer({ secret: SECRET }),
    commands: {
      register: { service: commands, allow: role('librarian') },
      reserve: { service: commands, allow: allOf(role('member'), self) },
      edit: { service: commands, allow: anyOf(role('librarian'), ({ state }) => (state as Doc | undefined)?.owner === undefined, owner('/owner')) },
      comment: { service: commands, allow: anyOf(role('librarian'), owner('/owner')) },
    },
    facts: {
      count: { query: async () => { let n = 0; for await (const _ of books.entries()) n++; return { books: n }; }, allow: role('member') },
    },
    views: {
      books: { projection: books, allow: anyOf(role('member'), role('librarian')) },
      docs: { projection: docs, allow: anyOf(role('librarian'), owner('/owner')) },
      audit: { projection: audit, allow: role('librarian') },
    },
    events: { allow: role('librarian') },
    explorer: { allow: role('librarian') },
    ...more,
  });
  afterTest(() => server.close());
  const tokens = { alice: await token('alice', ['member']), bob: await token('bob', ['member']), lib: await token('lib', ['librarian']), mallory: await token('mallory', []) };
  const send: App['send'] = (method, path, { as, body, headers = {} } = {}) => fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(as === undefined ? {} : { authorization: `Bearer ${tokens[as]}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return {
    log,
    path,
    server,
    url: server.url,
    tokens,
    send,
    async call(method, path, options) {
      const response = await send(method, path, options);
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
    },
    events: () => allEvents(log),
    async settle() {
      const head = await log.head();
      for (const projection of [books, docs, audit]) {
        while ((await projection.position()) < head) await projection.catchUp();
      }
    },
  };
}
