/**
 * Who gets through the gateway: for every route an actor the condition refuses gets 403 and the
 * log is unchanged; the actor comes from the token, never the body; bad tokens are 401; a 409
 * never shows an event the actor could not see through a view or the command's condition.
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, serve } from '../src/http/index.ts';
import { startApp, token } from './support/http-fixtures.ts';
import { tempLog } from './support/temp-log.ts';

describe('conditions on every route', () => {
  it('refuses an actor the condition does not allow with 403 on every route, and writes nothing', async () => {
    const app = await startApp();
    await app.call('POST', '/commands/register', { as: 'lib', body: { isbn: 'N', title: 'N', copies: 1 } });
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'x' } });
    await app.settle();
    const before = await app.events();
    const routes: [string, string, unknown?][] = [
      ['POST', '/commands/register', { isbn: 'M', title: 'M', copies: 1 }],
      ['POST', '/commands/reserve', { isbn: 'N', member: 'mallory' }],
      ['POST', '/commands/edit', { doc: 'd', text: 'mine now' }],
      ['POST', '/commands/comment', { doc: 'd', text: 'hi' }],
      ['GET', '/views/books/book/N'],
      ['GET', '/views/books'],
      ['GET', '/views/docs/doc/d'],
      ['GET', '/views/docs'],
      ['GET', '/views/audit'],
      ['GET', '/facts/count'],
      ['GET', '/events'],
      ['GET', '/'],
      ['GET', '/explorer/summary'],
      ['GET', '/explorer/events'],
      ['GET', '/explorer/aggregate?aggregate=doc:d'],
      ['GET', '/explorer/keys'],
    ];
    for (const [method, path, body] of routes) {
      const response = await app.call(method, path, { as: 'mallory', body });
      expect([path, response.status, response.body?.error]).toEqual([path, 403, 'FORBIDDEN']);
      expect((await app.call(method, path, { body })).status, path).toBe(401);
    }
    // Allowed for some and not others: bob is a member, but not alice's document's owner.
    expect((await app.call('POST', '/commands/edit', { as: 'bob', body: { doc: 'd', text: 'mine now' } })).status).toBe(403);
    expect((await app.call('GET', '/views/docs/doc/d', { as: 'bob' })).status).toBe(403);
    expect((await app.call('POST', '/commands/reserve', { as: 'bob', body: { isbn: 'N', member: 'alice' } })).status).toBe(403);
    expect(await app.events()).toEqual(before);
  });

  it('takes the actor from the token only: an actor in the body or headers is ignored', async () => {
    const app = await startApp();
    const { body } = await app.call('POST', '/commands/edit', {
      as: 'bob',
      body: { doc: 'd', text: 'x', actor: ['user', 'lib'], roles: ['librarian'] },
      headers: { 'x-actor': 'user:lib', 'x-user': 'lib' },
    });
    expect(body.events[0].action.actor).toEqual(['user', 'bob']);
    const forged = await app.call('POST', '/commands/register', { as: 'bob', body: { isbn: 'N', title: 'N', copies: 1, actor: ['user', 'lib'] } });
    expect(forged.status).toBe(403);
    expect(await app.log.head()).toBe(1);
  });

  it('answers 401 to an expired, not yet valid, badly signed, malformed or missing token', async () => {
    const app = await startApp();
    const bad = [
      await token('lib', ['librarian'], { expiresIn: Math.floor(Date.now() / 1000) - 60 }),
      await token('lib', ['librarian'], { notBefore: '1h' }),
      await token('lib', ['librarian'], { secret: 'another secret that is 32 bytes or more' }),
      `${app.tokens.lib.slice(0, -4)}AAAA`,
      'not-a-token',
      (await new SignJWT({ roles: ['librarian'] }).setProtectedHeader({ alg: 'HS512' }).setSubject('lib').setExpirationTime('1h').sign(new TextEncoder().encode('a test secret that is at least 32 bytes long'))),
    ];
    for (const credentials of bad) {
      const response = await app.call('POST', '/commands/register', { body: { isbn: 'N', title: 'N', copies: 1 }, headers: { authorization: `Bearer ${credentials}` } });
      expect(response.status).toBe(401);
      expect(response.body.error).toBe('UNAUTHORIZED');
    }
    expect((await app.call('POST', '/commands/register', { body: { isbn: 'N', title: 'N', copies: 1 }, headers: { authorization: `Basic ${Buffer.from('lib:x').toString('base64')}` } })).status).toBe(401);
    expect(await app.log.head()).toBe(0);
  });

  it('remembers a verified token only while it is in force: past its exp it is a 401', async () => {
    const { log } = await tempLog();
    let now = new Date();
    const authenticate = bearer({ secret: 'a test secret that is at least 32 bytes long', clock: () => now });
    const server = await serve(log, { authenticate, facts: { me: { query: (_args, { actor }) => actor, allow: () => true } } });
    try {
      const jwt = await token('ann', ['reader'], { expiresIn: '10m' });
      const me = () => fetch(`${server.url}/facts/me`, { headers: { authorization: `Bearer ${jwt}` } }).then((r) => r.status);
      expect([await me(), await me()]).toEqual([200, 200]);
      now = new Date(now.getTime() + 11 * 60_000);
      expect(await me()).toBe(401);
    } finally {
      await server.close();
    }
  });

  it('verifies RS256 and ES256 tokens against a local key set, with configurable claims', async () => {
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'r', alg: 'RS256' }, { ...(await exportJWK(ec.publicKey)), kid: 'e', alg: 'ES256' }] };
    const { log } = await tempLog();
    const authenticate = bearer({ jwks, issuer: 'https://id.example', actor: (claims) => (typeof claims.email === 'string' ? { id: ['staff', claims.email], roles: String(claims.scope ?? '').split(' ') } : undefined) });
    const server = await serve(log, { authenticate, facts: { me: { query: (_args, { actor }) => actor, allow: () => true } } });
    try {
      const sign = (key: Parameters<SignJWT["sign"]>[0], alg: string, kid: string, issuer = 'https://id.example') =>
        new SignJWT({ email: 'ann@example.com', scope: 'read write' }).setProtectedHeader({ alg, kid }).setIssuer(issuer).setExpirationTime('5m').sign(key);
      const me = (jwt: string) => fetch(`${server.url}/facts/me`, { headers: { authorization: `Bearer ${jwt}` } });
      for (const jwt of [await sign(rsa.privateKey, 'RS256', 'r'), await sign(ec.privateKey, 'ES256', 'e')]) {
        const response = await me(jwt);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ id: ['staff', 'ann@example.com'], roles: ['read', 'write'] });
      }
      expect((await me(await sign(rsa.privateKey, 'RS256', 'r', 'https://other.example'))).status).toBe(401);
      const stranger = await generateKeyPair('ES256');
      expect((await me(await sign(stranger.privateKey, 'ES256', 'e'))).status).toBe(401);
    } finally {
      await server.close();
    }
  });
});

describe('what a 409 shows', () => {
  it('leaves out the conflicts on aggregates the actor may not see through a view or the command\'s condition', async () => {
    const app = await startApp();
    const created = await app.call('POST', '/commands/edit', { as: 'bob', body: { doc: 'd', text: 'draft' } });
    const base = created.body.events[0].seq;
    // The librarian comments: the document (bob may see it) and its audit trail (he may not).
    const theirs = await app.call('POST', '/commands/comment', { as: 'lib', body: { doc: 'd', text: 'see me' } });
    expect(theirs.status).toBe(200);
    const [onDoc, onAudit] = theirs.body.events.map((e: any) => e.seq);
    const response = await app.call('POST', '/commands/comment', { as: 'bob', body: { doc: 'd', text: 'mine' }, headers: { 'if-match': `"${base}"` } });
    expect(response.status).toBe(409);
    expect(response.body.conflicts.map((c: any) => c.theirs.seq)).toEqual([onDoc]);
    expect(JSON.stringify(response.body)).not.toContain('comment by lib');
    expect(onAudit).toBeGreaterThan(onDoc);
    // The librarian, who may read the audit view, is shown both.
    const lib = await app.call('POST', '/commands/comment', { as: 'lib', body: { doc: 'd', text: 'again' }, headers: { 'if-match': `"${base}"` } });
    expect(lib.body.conflicts.map((c: any) => c.theirs.seq)).toEqual([onDoc, onAudit]);
    expect(await app.log.head()).toBe(onAudit);
  });
});
