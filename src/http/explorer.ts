/**
 * The explorer: the page at `/` and the JSON it reads, under `/explorer/`, all behind the
 * explorer's condition (`{ actor, args }`).
 *
 *   GET /explorer/summary              stats: events, aggregates, keys, projections (position,
 *                                      lag), process managers and notifiers when the log has them
 *   GET /explorer/events?kind=&aggregate=kind:id&actor=kind:id&before=&limit=
 *                                      the log, newest first, a page at a time
 *   GET /explorer/aggregate?aggregate=kind:id
 *                                      its history: each event with the state after it, and
 *                                      the states of the views that hold it and the actor may read
 *   GET /explorer/keys                 keys, live and destroyed, each with the erasure (the
 *                                      effect) that destroyed it
 *
 * Redaction: events are read as stored (`raw: true`) and every encrypted value is shown as the
 * log's redact value, whether its key lives or not, so the history and the states folded from it
 * never show plaintext of an encrypted value. Plaintext shows only as a view's state, and only of
 * views whose condition allows the actor that aggregate (`{ actor, aggregate, state }`).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { applyPatchAtomic } from '../model/fold.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey, sameIdentity } from '../model/validate.ts';
import type { Condition } from './conditions.ts';
import { page } from './explorer-page.ts';
import type { Gateway } from './gateway.ts';
import { forbidden } from './problem.ts';
import { redacted } from './redact.ts';
import { aggregateArg, argsOf, explorerEventsArgs } from './request.ts';
import { allowed, viewsShowing } from './visibility.ts';

const PAGE = 100;

/** Sends the page, with a content security policy that lets only its own inline code run. */
export function explorerPage(reply: FastifyReply): FastifyReply {
  const nonce = randomBytes(16).toString('base64');
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .send(page(nonce));
}

/** Up to `limit` events before `before` matching the filters, newest first, reading windows backwards. */
async function newestFirst(gateway: Gateway, filter: { kinds?: string[]; aggregates?: Identity[]; actor?: Identity }, before: number, limit: number): Promise<{ events: LogEvent[]; next?: number }> {
  const found: LogEvent[] = [];
  let to = before;
  let window = 256;
  while (to > 1 && found.length < limit) {
    const from = Math.max(1, to - window);
    const batch: LogEvent[] = [];
    for await (const event of gateway.log.read({ from, replay: false, raw: true, ...(filter.kinds === undefined ? {} : { kinds: filter.kinds }), ...(filter.aggregates === undefined ? {} : { aggregates: filter.aggregates }) })) {
      if (event.seq >= to) break;
      if (filter.actor !== undefined && !('action' in event && sameIdentity(event.action.actor, filter.actor))) continue;
      batch.push(event);
    }
    found.push(...batch.reverse());
    to = from;
    window = Math.min(window * 2, 65_536);
  }
  const events = found.slice(0, limit);
  const last = events.at(-1);
  return last !== undefined && (found.length > limit || to > 1) && events.length === limit ? { events, next: last.seq } : { events };
}

/** An aggregate's history as stored, redacted, each event with the state after it (the fold of what it shows). */
async function history(gateway: Gateway, aggregate: Identity) {
  let state: unknown = {};
  const entries: { event: LogEvent; state: unknown }[] = [];
  for await (const stored of gateway.log.read({ aggregates: [aggregate], replay: false, raw: true })) {
    const event = redacted(gateway.core, stored);
    if ('action' in event) state = applyPatchAtomic(state, event.action.patch);
    entries.push({ event, state });
  }
  return entries;
}

/** Every key with the effect that destroyed it (seq, reason, when, which aggregates it affected). */
async function keys(gateway: Gateway) {
  const erasures = new Map<string, { seq: number; reason: string; timestamp: Date; affected: readonly Identity[] }>();
  for (const { seq, affected } of await gateway.core.storage.effectsFrom(1)) {
    const event = await gateway.log.get(seq);
    if (event !== undefined && 'effect' in event) erasures.set(identityKey(event.effect.trigger), { seq, reason: event.effect.reason, timestamp: event.timestamp, affected });
  }
  const list = [];
  for await (const info of gateway.log.keys.list()) list.push({ ...info, erasure: erasures.get(identityKey(info.key)) ?? null });
  return list;
}

export function explorerRoutes(app: FastifyInstance, gateway: Gateway, allow: Condition): void {
  // One scope for the page and its data, so the condition guards exactly these routes.
  void app.register(async (scope) => {
    scope.addHook('preHandler', async (request) => {
      if (!(await allowed(allow, { actor: gateway.actor(request), args: argsOf(request.query) }))) throw forbidden('the explorer');
    });

    scope.get('/', async (_request, reply) => explorerPage(reply));

    scope.get('/explorer/summary', async () => {
      const stats = await gateway.log.stats();
      return { ...stats, views: [...gateway.options.views.keys()], commands: [...gateway.options.commands.keys()], live: gateway.options.events !== undefined };
    });

    scope.get('/explorer/events', async (request) => {
      const { kind, aggregate, actor, before, limit } = explorerEventsArgs(request.query);
      const head = await gateway.log.head();
      const filter = { ...(kind === undefined ? {} : { kinds: [kind] }), ...(aggregate === undefined ? {} : { aggregates: [aggregate] }), ...(actor === undefined ? {} : { actor }) };
      const { events, next } = await newestFirst(gateway, filter, Math.min(before ?? head + 1, head + 1), limit ?? PAGE);
      return { head, events: events.map((event) => redacted(gateway.core, event)), next: next ?? null };
    });

    scope.get('/explorer/aggregate', async (request) => {
      const aggregate = aggregateArg(request.query);
      return { aggregate, history: await history(gateway, aggregate), views: await viewsShowing(gateway.options.views, gateway.actor(request), aggregate) };
    });

    scope.get('/explorer/keys', async () => ({ keys: await keys(gateway) }));
  });
}
