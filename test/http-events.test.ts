/**
 * GET /events: the log as Server-Sent Events, live, over real HTTP: what another process appends
 * to the same LMDB store arrives on the stream; `from`, `kind` and `Last-Event-ID` say where it
 * starts and what it carries; encrypted values arrive as the redact value.
 */
import { describe, expect, it } from 'vitest';
import { spawnChild } from './support/child-process.ts';
import { startApp, type App } from './support/http-fixtures.ts';

interface Message { id: number; event: string; data: any }

/** Opens the stream and hands out its messages one by one. */
async function stream(app: App, query: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(`${app.url}/events${query}`, { headers: { authorization: `Bearer ${app.tokens.lib}`, ...headers }, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next(): Promise<Message> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
          if (fields.data === undefined) continue;
          return { id: Number(fields.id), event: fields.event as string, data: JSON.parse(fields.data as string) };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffer += value;
      }
    },
    close: () => controller.abort(),
  };
}

describe('GET /events', () => {
  it('delivers live what another process appends to the same store', async () => {
    const app = await startApp();
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'mine', text: 'before' } });
    const events = await stream(app, '');
    try {
      const child = spawnChild('http-append-child.ts', [app.path, 'theirs', 'from another process']);
      const seq = Number(await child.line());
      expect((await child.exited).code).toBe(0);
      const message = await events.next();
      expect(message).toMatchObject({ id: seq, event: 'action' });
      expect(message.data.action).toMatchObject({ aggregate: ['doc', 'theirs'], patch: [{ op: 'add', path: '/text', value: 'from another process' }] });
      expect(message.data.source).toMatch(/^child-\d+$/);
      // And this process's own appends, as they are made.
      await app.call('POST', '/commands/edit', { as: 'bob', body: { doc: 'b', text: 'live' } });
      expect((await events.next()).data.action.aggregate).toEqual(['doc', 'b']);
    } finally {
      events.close();
    }
  });

  it('starts at from, filters by kind, resumes after Last-Event-ID, and shows encrypted values redacted', async () => {
    const app = await startApp();
    await app.call('POST', '/commands/register', { as: 'lib', body: { isbn: 'N', title: 'Neuromancer', copies: 1 } });
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'x', secret: 'my card 4111' } });
    await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'y' } });
    const docs = await stream(app, '?from=1&kind=doc');
    try {
      const first = await docs.next();
      expect(first.id).toBe(2);
      expect(first.data.action.patch).toContainEqual({ op: 'add', path: '/secret', value: '[erased]' });
      expect(first.data.encrypted).toEqual(['/secret']);
      expect(JSON.stringify(first.data)).not.toContain('4111');
      expect((await docs.next()).id).toBe(3);
    } finally {
      docs.close();
    }
    const resumed = await stream(app, '?from=1', { 'last-event-id': '2' });
    try {
      expect((await resumed.next()).id).toBe(3);
    } finally {
      resumed.close();
    }
  });

  it('ends the streams when the server closes', async () => {
    const app = await startApp();
    const events = await stream(app, '?from=1');
    await app.server.close();
    await expect(events.next()).rejects.toThrow();
  });
});
