/**
 * `GET /facts/:name?...`: what the route's `query` answers for the query string's arguments,
 * as JSON. The condition sees `{ actor, args }`; an answer of undefined is a 404.
 */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from './gateway.ts';
import { forbidden, notFound } from './problem.ts';
import { argsOf, standard } from './request.ts';
import { allowed } from './visibility.ts';

export function factRoute(app: FastifyInstance, gateway: Gateway): void {
  app.get<{ Params: { name: string } }>('/facts/:name', async (request, reply) => {
    const { name } = request.params;
    const fact = gateway.options.facts.get(name);
    if (fact === undefined) throw notFound(`fact ${JSON.stringify(name)}`);
    const actor = gateway.actor(request);
    const args = argsOf(request.query);
    const checked = fact.schema === undefined ? args : ((await standard(fact.schema, args, 'query')) as typeof args);
    if (!(await allowed(fact.allow, { actor, args: checked }))) throw forbidden(`fact ${JSON.stringify(name)}`);
    const value = await fact.query(checked, { actor, log: gateway.log });
    if (value === undefined) throw notFound(`fact ${JSON.stringify(name)}`);
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(value));
  });
}
