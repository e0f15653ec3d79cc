/**
 * `GET /views/:name/:kind/:id` (one aggregate's state) and `GET /views/:name?kind=` (every
 * entry the actor may read), with the projection's position as the ETag: the `If-Match` of a
 * command decided on what the view showed. `If-None-Match` with the current ETag is a 304.
 *
 * One aggregate: 403 unless the condition allows `{ actor, aggregate, state }` (state undefined
 * when the view holds none, so a missing entry tells nothing to whom may not read it), 404 when
 * it allows and there is none. A list: the entries whose `{ actor, aggregate, state }` the
 * condition allows; 403 when there is none and the condition refuses `{ actor, args }` too.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../errors.ts';
import type { Identity } from '../model/types.ts';
import { prepareIdentity } from '../model/validate.ts';
import type { Gateway } from './gateway.ts';
import type { ViewRoute } from './options.ts';
import { badRequest, forbidden, notFound } from './problem.ts';
import { argsOf, matchesETag, parseId } from './request.ts';
import { allowed } from './visibility.ts';

function viewOf(gateway: Gateway, name: string): ViewRoute {
  const view = gateway.options.views.get(name);
  if (view === undefined) throw notFound(`view ${JSON.stringify(name)}`);
  return view;
}

/** Sets the ETag; true when the client's copy is current and the answer is a 304. */
function current(gateway: Gateway, request: FastifyRequest, reply: FastifyReply, position: number): boolean {
  const etag = `"${position}"`;
  reply.header('etag', etag).header('cache-control', 'private, no-cache');
  if (!matchesETag(gateway.header(request, 'if-none-match'), etag)) return false;
  void reply.code(304).send();
  return true;
}

export function viewRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.get<{ Params: { name: string; kind: string; id: string } }>('/views/:name/:kind/:id', async (request, reply) => {
    const { name, kind, id } = request.params;
    const view = viewOf(gateway, name);
    let aggregate: Identity;
    try {
      aggregate = prepareIdentity([kind, parseId(id)], 'aggregate');
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw badRequest(`the path names no aggregate: ${e.message}`);
      throw e;
    }
    // The position before the state: the ETag never claims more than the state shows.
    const position = await view.projection.position();
    const state = await view.projection.get(aggregate);
    if (!(await allowed(view.allow, { actor: gateway.actor(request), aggregate, state }))) throw forbidden(`view ${JSON.stringify(name)}`);
    if (state === undefined) throw notFound(`view ${JSON.stringify(name)}: ${JSON.stringify(aggregate)}`);
    if (current(gateway, request, reply, position)) return reply;
    return { aggregate, state };
  });

  app.get<{ Params: { name: string } }>('/views/:name', async (request, reply) => {
    const view = viewOf(gateway, request.params.name);
    const args = argsOf(request.query);
    const { kind } = args;
    if (kind !== undefined && (typeof kind !== 'string' || kind.length === 0)) throw badRequest('query.kind: expected one kind');
    const actor = gateway.actor(request);
    const position = await view.projection.position();
    const entries: { aggregate: Identity; state: unknown }[] = [];
    for await (const [aggregate, state] of view.projection.entries(kind === undefined ? {} : { kind })) {
      if (await allowed(view.allow, { actor, aggregate, state })) entries.push({ aggregate, state });
    }
    if (entries.length === 0 && !(await allowed(view.allow, { actor, args }))) throw forbidden(`view ${JSON.stringify(request.params.name)}`);
    if (current(gateway, request, reply, position)) return reply;
    return { entries };
  });
}
