/**
 * `POST /commands/:name`: the JSON body is the command, run by the route's command service as
 * the authenticated actor. `If-Match: "N"` gives the base (the position of the view the actor
 * decided on), `Idempotency-Key` the key, scoped to the actor and the command.
 *
 * 200 `{ events }` (a replay under a seen key too, with `Idempotent-Replayed: true`), 409
 * `{ conflicts }` (those the actor may see, see visibility.ts), 412 `{ head }`, 422
 * `{ reason, details }`, 400 for bad input (the `InvalidEventError`'s message among it), 403.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { aggregatesOf, serviceInternals } from '../commands/command-service.ts';
import { RejectedError } from '../errors.ts';
import { statesAt } from '../log/state.ts';
import type { Identity } from '../model/types.ts';
import type { Actor } from './conditions.ts';
import type { Gateway } from './gateway.ts';
import { forbidden, notFound, Problem } from './problem.ts';
import { baseOf, commandOf, idempotencyKeyOf } from './request.ts';
import { allowed, visibleConflicts } from './visibility.ts';

/**
 * The key the log records for a client's `Idempotency-Key`: one client's key never meets
 * another actor's (who would otherwise be handed the first one's events), nor another command.
 */
function scopedKey(actor: Actor, command: string, key: string): string {
  return `http:${createHash('sha256').update(JSON.stringify([actor.id, command, key])).digest('hex')}`;
}

export function commandRoute(app: FastifyInstance, gateway: Gateway): void {
  app.post<{ Params: { name: string } }>('/commands/:name', async (request, reply) => {
    const { name } = request.params;
    const route = gateway.options.commands.get(name);
    if (route === undefined) throw notFound(`command ${JSON.stringify(name)}`);
    const actor = gateway.actor(request);
    const base = baseOf(gateway.header(request, 'if-match'));
    const key = idempotencyKeyOf(gateway.header(request, 'idempotency-key'));
    const command = await commandOf(request.body, route.schema);
    const internals = serviceInternals(route.service);
    const decider = internals?.deciders.get(name);
    if (internals === undefined || decider === undefined) throw notFound(`command ${JSON.stringify(name)}`);
    // The states the condition may look at: those the decider names, read now. A command whose
    // aggregates cannot be named (the decider refuses it there) is judged without them.
    const aggregates = aggregatesOf(decider, command);
    const named: Identity[] = aggregates instanceof RejectedError ? [] : aggregates;
    const { states } = await statesAt(internals.core, named);
    const involved = named.map((aggregate, i) => Object.freeze({ aggregate, state: states[i] }));
    const [first] = involved;
    const context = { actor, command, involved: Object.freeze(involved), ...(first === undefined ? {} : first) };
    if (!(await allowed(route.allow, context))) throw forbidden(`command ${JSON.stringify(name)}`);
    const result = await route.service.execute(name, command, {
      actor: actor.id,
      source: gateway.options.source,
      ...(base === undefined ? {} : { base }),
      ...(key === undefined ? {} : { idempotencyKey: scopedKey(actor, name, key) }),
    });
    switch (result.status) {
      case 'ok':
        return { events: result.events };
      case 'duplicate':
        reply.header('idempotent-replayed', 'true');
        return { events: result.events };
      case 'rejected':
        throw new Problem(422, 'REJECTED', `command ${JSON.stringify(name)} was rejected: ${result.reason}`, { reason: result.reason, details: result.details ?? null });
      case 'invalid-base':
        throw new Problem(412, 'INVALID_BASE', `If-Match: expected a position at most the head (${result.head}), got ${base ?? 'none'}`, { head: result.head });
      case 'conflict': {
        const conflicts = await visibleConflicts(internals.core, gateway.options.views, actor, { allow: route.allow, command }, result.conflicts);
        throw new Problem(409, 'CONFLICT', `command ${JSON.stringify(name)}: others changed what it decides on since the base; read again, then retry with the new position`, { conflicts });
      }
    }
  });
}
