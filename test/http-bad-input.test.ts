/**
 * Bad input at the gateway: a clear 4xx with `{ error, message }`, and nothing written. Raw
 * requests go through a socket, so that what a client library would refuse to send is sent.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startApp, type App } from './support/http-fixtures.ts';

/** Sends `request` as raw bytes and returns the status line's code and the response text. */
function raw(app: App, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(app.server.port, '127.0.0.1', () => socket.write(request, 'latin1'));
    let text = '';
    socket.on('data', (chunk) => { text += chunk.toString('latin1'); });
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
  });
}

function post(app: App, headers: string[], body: string): string {
  return [`POST /commands/edit HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: Bearer ${app.tokens.alice}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, ...headers, 'Connection: close', '', body].join('\r\n');
}

const doc = JSON.stringify({ doc: 'd', text: 'x' });

describe('bad input', () => {
  it('answers 400 for malformed JSON, an empty body, a poisoned prototype or a body nested too deep', async () => {
    const app = await startApp();
    const bodies = ['{"doc": "d", ', '', '{"doc":"d","text":"x","__proto__":{"admin":true}}', '{"doc":"d","text":"x","constructor":{"prototype":{"admin":true}}}', `${'['.repeat(100)}${']'.repeat(100)}`];
    for (const body of bodies) {
      const response = await app.call('POST', '/commands/edit', { as: 'alice', body, headers: { 'content-type': 'application/json' } });
      expect([body.slice(0, 20), response.status, response.body.error]).toEqual([body.slice(0, 20), 400, 'BAD_REQUEST']);
      expect(response.body.message).toMatch(/^body: expected/);
      expect(response.body.message).not.toContain('admin');
    }
    expect(await app.log.head()).toBe(0);
  });

  it('answers 415 to a body of another type, or one that claims none', async () => {
    const app = await startApp();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      const response = await app.call('POST', '/commands/edit', { as: 'alice', body: doc, headers: { 'content-type': type } });
      expect([type, response.status, response.body.error]).toEqual([type, 415, 'UNSUPPORTED_MEDIA_TYPE']);
    }
    expect((await raw(app, post(app, [], doc).replace('Content-Type: application/json\r\n', ''))).status).toBe(415);
    expect(await app.log.head()).toBe(0);
  });

  it('answers 413 to a huge body, announced or streamed in chunks, before reading it all', async () => {
    const app = await startApp();
    const huge = JSON.stringify({ doc: 'd', text: 'x'.repeat(3 << 20) });
    const announced = await app.call('POST', '/commands/edit', { as: 'alice', body: huge });
    expect([announced.status, announced.body.error]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const chunked = await fetch(`${app.url}/commands/edit`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.tokens.alice}`, 'content-type': 'application/json' },
      body: new ReadableStream({ start(controller) { for (let i = 0; i < 24; i++) controller.enqueue(new TextEncoder().encode(i === 0 ? '{"doc":"d","text":"' : 'x'.repeat(1 << 17))); controller.close(); } }),
      duplex: 'half',
    } as RequestInit).catch((e: unknown) => e);
    if (chunked instanceof Response) expect(chunked.status).toBe(413); // or the server cut the upload short
    const lying = await raw(app, post(app, [], doc).replace(/Content-Length: \d+/, 'Content-Length: 99999999'));
    expect(lying.status).toBe(413);
    expect(await app.log.head()).toBe(0);
  });

  it('treats a view id with path traversal as a name, never a path: 400 or 404, nothing read elsewhere', async () => {
    const app = await startApp();
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'x' } });
    await app.settle();
    for (const path of ['/views/docs/doc/..%2F..%2F..%2Fetc%2Fpasswd', '/views/docs/doc/%2e%2e', '/views/docs/..%2Fdoc/d', '/views/..%2Fdocs/doc/d']) {
      const response = await app.call('GET', path, { as: 'lib' });
      expect([path, response.status]).toEqual([path, 404]);
      expect(response.body.error).toBe('NOT_FOUND');
    }
    const nul = await app.call('GET', '/views/docs/doc/d%00', { as: 'lib' });
    expect([nul.status, nul.body.error]).toEqual([400, 'BAD_REQUEST']);
    const dots = await raw(app, `GET /views/docs/doc/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${app.tokens.lib}\r\nConnection: close\r\n\r\n`);
    expect(dots.status).toBe(404);
    expect(dots.text).not.toContain('root:');
    const long = await app.call('GET', `/views/docs/doc/${'a'.repeat(600)}`, { as: 'lib' });
    expect([long.status, long.body.error]).toEqual([400, 'BAD_REQUEST']);
  });

  it('refuses an Idempotency-Key with CR or LF in it, over-long or not ASCII, and writes nothing', async () => {
    const app = await startApp();
    for (const header of ['Idempotency-Key: a\rSet-Cookie: x=1', 'Idempotency-Key: a\nSet-Cookie: x=1', 'Idempotency-Key: a\r\n Set-Cookie: x=1']) {
      const response = await raw(app, post(app, [header], doc));
      expect([JSON.stringify(header), response.status]).toEqual([JSON.stringify(header), 400]);
      expect(response.text).not.toMatch(/^set-cookie/im);
    }
    const long = await app.call('POST', '/commands/edit', { as: 'alice', body: doc, headers: { 'idempotency-key': 'k'.repeat(256) } });
    expect([long.status, long.body.error]).toEqual([400, 'BAD_REQUEST']);
    expect(long.body.message).toMatch(/^Idempotency-Key: expected 1 to 255 characters of printable ASCII/);
    const latin = await raw(app, post(app, ['Idempotency-Key: caf\u00e9'], doc));
    expect(latin.status).toBe(400);
    expect(await app.log.head()).toBe(0);
    const fine = await app.call('POST', '/commands/edit', { as: 'alice', body: doc, headers: { 'idempotency-key': 'k'.repeat(255) } });
    expect(fine.status).toBe(200);
  });

  it('refuses a malformed If-Match, a bad query and an unknown route with a clear 4xx', async () => {
    const app = await startApp();
    for (const ifMatch of ['1', '"-1"', '"1.5"', 'W/"1"', '"1", "2"', '"99999999999999999999"']) {
      const response = await app.call('POST', '/commands/edit', { as: 'alice', body: doc, headers: { 'if-match': ifMatch } });
      expect([ifMatch, response.status, response.body.error]).toEqual([ifMatch, 400, 'BAD_REQUEST']);
    }
    expect((await app.call('GET', '/events?from=zero', { as: 'lib' })).body).toMatchObject({ error: 'BAD_REQUEST', message: 'query.from: expected a seq, decimal digits' });
    expect((await app.call('GET', '/explorer/aggregate?aggregate=nocolon', { as: 'lib' })).body).toMatchObject({ error: 'BAD_REQUEST', message: 'query.aggregate: expected kind:id' });
    expect((await app.call('GET', '/explorer/events?limit=5000', { as: 'lib' })).status).toBe(400);
    expect((await app.call('DELETE', '/commands/edit', { as: 'alice' })).status).toBe(404);
    expect(await app.log.head()).toBe(0);
  });
});
