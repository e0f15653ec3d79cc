/**
 * The gateway's routes and statuses over real HTTP on a loopback port: commands (200, 409, 412,
 * 422, 400, 401, 403, 413, 415; If-Match and Idempotency-Key), facts, views (ETag, 304) and the
 * options `serve` refuses.
 */
import { describe, expect, it } from 'vitest';
import { createCommandService, decider, InvalidArgumentError } from '../src/index.ts';
import { role, serve } from '../src/http/index.ts';
import { startApp, type App } from './support/http-fixtures.ts';
import { tempLog } from './support/temp-log.ts';

const NEUROMANCER = { isbn: '978-0441569595', title: 'Neuromancer', copies: 1 };

async function withBook(): Promise<App> {
  const app = await startApp();
  expect((await app.call('POST', '/commands/register', { as: 'lib', body: NEUROMANCER })).status).toBe(200);
  return app;
}

describe('POST /commands/:name', () => {
  it('runs the command as the authenticated actor and answers 200 with the events', async () => {
    const app = await withBook();
    const { status, body } = await app.call('POST', '/commands/reserve', { as: 'alice', body: { isbn: NEUROMANCER.isbn, member: 'alice' } });
    expect(status).toBe(200);
    expect(body.events.map((e: any) => [e.seq, e.action.reason, e.action.actor, e.source])).toEqual([
      [2, 'lent', ['user', 'alice'], 'http'],
      [3, 'borrowed', ['user', 'alice'], 'http'],
    ]);
    expect(await app.log.head()).toBe(3);
  });

  it('answers 422 with the reason and details when the decider rejects, writing nothing', async () => {
    const app = await withBook();
    await app.call('POST', '/commands/reserve', { as: 'alice', body: { isbn: NEUROMANCER.isbn, member: 'alice' } });
    const { status, body } = await app.call('POST', '/commands/reserve', { as: 'bob', body: { isbn: NEUROMANCER.isbn, member: 'bob' } });
    expect(status).toBe(422);
    expect(body).toMatchObject({ error: 'REJECTED', reason: 'no-copies', details: { copies: 1 } });
    expect(typeof body.message).toBe('string');
    expect(await app.log.head()).toBe(3);
  });

  it('takes If-Match as the base: 409 with the conflicts when others wrote since, 412 beyond the head', async () => {
    const app = await startApp();
    expect((await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'one' } })).status).toBe(200);
    expect((await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'two' }, headers: { 'if-match': '"1"' } })).status).toBe(200);
    const stale = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'three' }, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toBe('CONFLICT');
    expect(stale.body.conflicts.map((c: any) => [c.ours.seq, c.theirs.seq])).toEqual([[3, 2]]);
    const beyond = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'three' }, headers: { 'if-match': '"9"' } });
    expect(beyond.status).toBe(412);
    expect(beyond.body).toMatchObject({ error: 'INVALID_BASE', head: 2 });
    expect(await app.log.head()).toBe(2);
    const fresh = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'three' }, headers: { 'if-match': '"2"' } });
    expect(fresh.status).toBe(200);
  });

  it('runs a command retried under one Idempotency-Key once: the same events, marked as a replay', async () => {
    const app = await withBook();
    const request = { as: 'alice' as const, body: { isbn: NEUROMANCER.isbn, member: 'alice' }, headers: { 'idempotency-key': 'desk-7/4711' } };
    const first = await app.call('POST', '/commands/reserve', request);
    const again = await app.call('POST', '/commands/reserve', request);
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await app.log.head()).toBe(3);
  });

  it('scopes an Idempotency-Key to its actor: another actor with the same key runs their own command', async () => {
    const app = await startApp();
    const key = { 'idempotency-key': 'same-key' };
    const alice = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'a', text: 'x' }, headers: key });
    const bob = await app.call('POST', '/commands/edit', { as: 'bob', body: { doc: 'b', text: 'y' }, headers: key });
    expect([alice.status, bob.status]).toEqual([200, 200]);
    expect(bob.headers.get('idempotent-replayed')).toBeNull();
    expect(bob.body.events[0].action.aggregate).toEqual(['doc', 'b']);
    expect(await app.log.head()).toBe(2);
  });

  it('answers 400 with the InvalidEventError message for a command that decides an invalid action', async () => {
    const app = await startApp();
    const { status, body } = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'x', path: 'no-slash' } });
    expect(status).toBe(400);
    expect(body.error).toBe('INVALID_EVENT');
    expect(body.message).toMatch(/^decider "edit": intents\[0\]\.patch\[0\]\.path: expected a JSON Pointer/);
    expect(await app.log.head()).toBe(0);
  });

  it('answers 401 without credentials, 403 when the condition says no, 404 for an unknown command', async () => {
    const app = await withBook();
    const body = { isbn: NEUROMANCER.isbn, member: 'alice' };
    expect((await app.call('POST', '/commands/reserve', { body })).body).toMatchObject({ error: 'UNAUTHORIZED' });
    expect((await app.call('POST', '/commands/reserve', { body })).status).toBe(401);
    const forbidden = await app.call('POST', '/commands/reserve', { as: 'mallory', body });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ error: 'FORBIDDEN' });
    const unknown = await app.call('POST', '/commands/burn', { as: 'lib', body });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('NOT_FOUND');
    expect(await app.log.head()).toBe(1);
  });

  it('answers 413 for a body over the limit and 415 for one that is not JSON', async () => {
    const app = await startApp({ bodyLimit: 1024 });
    const big = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'x'.repeat(2000) } });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: 'PAYLOAD_TOO_LARGE', message: 'the body is over the limit of 1024 bytes' });
    const text = await app.call('POST', '/commands/edit', { as: 'alice', body: 'doc=d', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.body.error).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await app.log.head()).toBe(0);
  });

  it('checks the body against the command\'s own Standard Schema before the condition and the log', async () => {
    const { log } = await tempLog();
    const service = createCommandService(log, { deciders: [decider<{ n: number }>({ name: 'count', aggregates: () => [['counter', 1]], decide: ({ n }) => [{ aggregate: ['counter', 1], reason: 'counted', patch: [{ op: 'add', path: '/n', value: n }] }] })] });
    const schema = { '~standard': { version: 1 as const, vendor: 'test', validate: (value: unknown) => (typeof (value as { n?: unknown }).n === 'number' ? { value } : { issues: [{ message: 'expected a number', path: ['n'] }] }) } };
    let asked = 0;
    const server = await serve(log, { authenticate: () => ({ id: ['user', 'u'] }), commands: { count: { service, schema, allow: () => { asked++; return true; } } } });
    try {
      const bad = await fetch(`${server.url}/commands/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":"one"}' });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({ error: 'BAD_REQUEST', message: 'body.n: expected a number', issues: [{ message: 'expected a number', path: ['n'] }] });
      expect(asked).toBe(0);
      const good = await fetch(`${server.url}/commands/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
      expect(good.status).toBe(200);
      expect(await log.head()).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe('GET /views', () => {
  it('answers one aggregate\'s state with the projection\'s position as ETag, and 304 for If-None-Match', async () => {
    const app = await withBook();
    await app.settle();
    const { status, headers, body } = await app.call('GET', `/views/books/book/${NEUROMANCER.isbn}`, { as: 'alice' });
    expect(status).toBe(200);
    expect(headers.get('etag')).toBe('"1"');
    expect(body).toEqual({ aggregate: ['book', NEUROMANCER.isbn], state: { title: 'Neuromancer', copies: 1, onLoan: 0 } });
    const cached = await app.send('GET', `/views/books/book/${NEUROMANCER.isbn}`, { as: 'alice', headers: { 'if-none-match': '"1"' } });
    expect(cached.status).toBe(304);
    expect(await cached.text()).toBe('');
  });

  it('gives the ETag a command takes as If-Match', async () => {
    const app = await startApp();
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'one' } });
    await app.settle();
    const view = await app.call('GET', '/views/docs/doc/d', { as: 'alice' });
    const next = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'two' }, headers: { 'if-match': view.headers.get('etag') as string } });
    expect(next.status).toBe(200);
  });

  it('reads an id of decimal digits as a number, as the CLI does', async () => {
    const app = await startApp();
    await app.log.append([{ source: 't', action: { reason: 'r', actor: ['user', 'lib'], aggregate: ['book', 7], patch: [{ op: 'add', path: '/title', value: 'Seven' }] } }], { base: 0 });
    await app.settle();
    expect((await app.call('GET', '/views/books/book/7', { as: 'alice' })).body.aggregate).toEqual(['book', 7]);
    expect((await app.call('GET', '/views/books/book/%227%22', { as: 'alice' })).status).toBe(404);
  });

  it('lists the entries the actor may read, by kind, 403 when there are none and the condition refuses', async () => {
    const app = await startApp();
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'a', text: 'x' } });
    await app.call('POST', '/commands/edit', { as: 'bob', body: { doc: 'b', text: 'y' } });
    await app.settle();
    const alices = await app.call('GET', '/views/docs?kind=doc', { as: 'alice' });
    expect(alices.status).toBe(200);
    expect(alices.headers.get('etag')).toBe('"2"');
    expect(alices.body.entries.map((e: any) => e.aggregate)).toEqual([['doc', 'a']]);
    expect((await app.call('GET', '/views/docs', { as: 'lib' })).body.entries).toHaveLength(2);
    expect((await app.call('GET', '/views/docs', { as: 'mallory' })).status).toBe(403);
  });

  it('answers 404 for an aggregate the view does not hold, when the condition allows', async () => {
    const app = await startApp();
    expect((await app.call('GET', '/views/books/book/none', { as: 'alice' })).status).toBe(404);
    expect((await app.call('GET', '/views/nothing/book/none', { as: 'alice' })).status).toBe(404);
  });
});

describe('GET /facts/:name', () => {
  it('answers what the query returns for the arguments, under the condition', async () => {
    const app = await withBook();
    await app.settle();
    expect(await app.call('GET', '/facts/count?any=thing', { as: 'alice' })).toMatchObject({ status: 200, body: { books: 1 } });
    expect((await app.call('GET', '/facts/count', { as: 'mallory' })).status).toBe(403);
    expect((await app.call('GET', '/facts/count')).status).toBe(401);
    expect((await app.call('GET', '/facts/none', { as: 'alice' })).status).toBe(404);
  });
});

describe('serve options', () => {
  it('refuses a route without a condition: it does not exist', async () => {
    const { log } = await tempLog();
    const service = createCommandService(log, { deciders: [decider({ name: 'x', aggregates: () => [['x', 1]], decide: () => [] })] });
    const projection = log.projection('p');
    const authenticate = () => undefined;
    for (const options of [
      { authenticate, commands: { x: { service } } },
      { authenticate, views: { p: { projection } } },
      { authenticate, facts: { f: { query: () => 1 } } },
      { authenticate, events: {} },
      { authenticate, explorer: { allow: 'yes' } },
    ]) {
      await expect(serve(log, options as never)).rejects.toThrow(InvalidArgumentError);
      await expect(serve(log, options as never)).rejects.toThrow(/allow: expected a condition/);
    }
    await expect(serve(log, { authenticate, commands: { y: { service, allow: role('a') } } })).rejects.toThrow(/expected the name of one of the service's deciders/);
    await expect(serve(log, {} as never)).rejects.toThrow(/options.authenticate: expected a function/);
  });

  it('listens on 127.0.0.1 and a free port by default, and closes twice harmlessly', async () => {
    const { log } = await tempLog();
    const server = await serve(log, { authenticate: () => undefined });
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    await server.close();
    await server.close();
    await expect(fetch(server.url)).rejects.toThrow();
  });
});
