/**
 * `GET /events?from=&kind=`: the log as Server-Sent Events, live. Each event is one message,
 * `id` its seq (a reconnecting client's `Last-Event-ID` resumes after it), `event` `action` or
 * `effect`, `data` the event as JSON with encrypted values shown as the redact value (see
 * redact.ts). Without `from` the stream starts after the head: what is appended from now on,
 * by this process or any other (the engine's watch hears those). A comment every 15 s keeps
 * proxies from closing an idle stream. The condition sees `{ actor, args: { from, kinds } }`.
 */
import type { FastifyInstance } from 'fastify';
import type { LogEvent } from '../model/types.ts';
import type { Gateway } from './gateway.ts';
import { forbidden } from './problem.ts';
import { redacted } from './redact.ts';
import { eventsArgs } from './request.ts';
import { allowed } from './visibility.ts';

const HEARTBEAT_MS = 15_000;

function message(event: LogEvent & { encrypted?: string[] }): string {
  return `id: ${event.seq}\nevent: ${'action' in event ? 'action' : 'effect'}\ndata: ${JSON.stringify(event)}\n\n`;
}

export function eventStream(app: FastifyInstance, gateway: Gateway, allow: NonNullable<Gateway['options']['events']>['allow']): void {
  app.get('/events', async (request, reply) => {
    const { from, kinds } = eventsArgs(request.query, gateway.header(request, 'last-event-id'));
    const actor = gateway.actor(request);
    if (!(await allowed(allow, { actor, args: { from, kinds } }))) throw forbidden('the event stream');
    const { log, core } = gateway;
    let next = from ?? (await log.head()) + 1;
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // A stream ends only when one side is done with it: never reuse its connection.
      connection: 'close',
      'x-accel-buffering': 'no',
    });
    raw.write(': coherence event stream\n\n');
    let ended = false;
    let pumping: Promise<void> | undefined;
    let again = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      unwatch();
      cancelOnClose();
      // Then let go of the connection: a client that went away may keep it open for seconds,
      // which would hold up the server's close.
      const socket = request.raw.socket;
      raw.end(() => socket.destroy());
      if (raw.destroyed) socket.destroy();
    };
    /** Sends everything from `next` up to the head as it is now; one pump at a time. */
    const pump = (): void => {
      if (ended) return;
      if (pumping !== undefined) {
        again = true;
        return;
      }
      pumping = (async () => {
        const head = await log.head();
        if (head < next) return;
        for await (const event of log.read({ from: next, replay: false, raw: true, ...(kinds === undefined ? {} : { kinds }) })) {
          if (ended || event.seq > head) break;
          if (!raw.write(message(redacted(core, event)))) await new Promise((resolve) => raw.once('drain', resolve));
        }
        next = head + 1;
      })().catch((error: unknown) => {
        gateway.options.onError(error);
        end();
      }).finally(() => {
        pumping = undefined;
        if (again) {
          again = false;
          pump();
        }
      });
    };
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const unsubscribe = core.onWrite(pump);
    const unwatch = core.storage.watch(pump);
    const cancelOnClose = gateway.onClose(end);
    raw.on('close', end);
    pump();
  });
}
