/**
 * `serve`: the log over HTTP, on Fastify. Every request is authenticated first (401 without an
 * actor), then routed (404), its body parsed as JSON within the limit (415, 400, 413), its parts
 * checked (400), and only then the route's condition asked (403) before anything reaches the log.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { coreOf } from '../api/internal.ts';
import type { Log } from '../api/log.ts';
import { CoherenceError, InvalidEventError, LogClosedError } from '../errors.ts';
import { prepareIdentity } from '../model/validate.ts';
import { commandRoute } from './command-route.ts';
import type { Actor } from './conditions.ts';
import { eventStream } from './event-stream.ts';
import { explorerPage, explorerRoutes } from './explorer.ts';
import { factRoute } from './fact-route.ts';
import type { Gateway } from './gateway.ts';
import { prepareServeOptions, type HttpRequest, type Prepared, type ServeOptions } from './options.ts';
import { notFound, Problem, unauthorized } from './problem.ts';
import { viewRoutes } from './view-routes.ts';

/** A running gateway. */
export interface Server {
  /** `http://host:port`, for clients. */
  readonly url: string;
  readonly host: string;
  /** The port it listens on (the one the system chose for port 0). */
  readonly port: number;
  /**
   * Stops taking connections, lets the requests in flight finish, ends the event streams and
   * stops following the views' projections. The log stays open: closing it is the caller's.
   * Closing twice is harmless.
   */
  close(): Promise<void>;
}

function headersOf(request: FastifyRequest): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  return headers;
}

/** The actor `authenticate` found, checked: a bad answer is the authenticator's bug, not the client's. */
async function authenticated(options: Prepared, request: FastifyRequest): Promise<Actor | undefined> {
  const view: HttpRequest = Object.freeze({ method: request.method, url: request.url, headers: Object.freeze(headersOf(request)) });
  const found: unknown = await options.authenticate(view);
  if (found === undefined || found === null) return undefined;
  const { id, roles } = found as { id?: unknown; roles?: unknown };
  const identity = prepareIdentity(id, 'authenticate(request).id');
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
    throw new TypeError('authenticate(request).roles: expected an array of strings');
  }
  return Object.freeze({ id: identity, ...(roles === undefined ? {} : { roles: Object.freeze([...(roles as string[])]) }) });
}

/** A Fastify refusal (body parsing, limits) in the gateway's terms, never quoting the body. */
function fromFastify(error: FastifyError, bodyLimit: number): Problem | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem(413, 'PAYLOAD_TOO_LARGE', `the body is over the limit of ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'expected Content-Type: application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem(400, 'BAD_REQUEST', 'body: expected a JSON value, got an empty body');
    default:
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    const poisoned = /__proto__|constructor/.test(error.message);
    return new Problem(400, 'BAD_REQUEST', poisoned ? 'body: expected no "__proto__" or "constructor.prototype" member' : 'body: expected valid JSON');
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) return new Problem(error.statusCode, 'BAD_REQUEST', error.message);
  return undefined;
}

/**
 * Serves `log` over HTTP: the commands, facts and views given, the live event stream and the
 * explorer page, each route open only under its condition. Listens before it resolves.
 *
 * @throws InvalidArgumentError for bad options, above all a route without a condition (it does
 *   not exist), a command route not naming a decider of its service, or `log` not being a log.
 * @throws LogClosedError when the log is closed.
 * @example
 * const server = await serve(log, {
 *   authenticate: bearer({ secret: process.env.JWT_SECRET }),
 *   commands: { reserve: { service: commands, allow: role('member') } },
 *   views: { books: { projection: books, allow: role('member') } },
 *   explorer: { allow: role('librarian') },
 * });
 * console.log(server.url);
 */
export async function serve(log: Log, options: ServeOptions): Promise<Server> {
  const core = coreOf(log);
  const prepared = prepareServeOptions(options);
  core.assertOpen();
  const app = Fastify({
    bodyLimit: prepared.bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    routerOptions: { maxParamLength: 2048 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    logger: false,
  });
  // JSON bodies only: anything else is a 415 before a byte of it is read.
  app.removeContentTypeParser('text/plain');
  const actors = new WeakMap<FastifyRequest, Actor>();
  const closing = new Set<() => void>();
  const gateway: Gateway = {
    log,
    core,
    options: prepared,
    actor(request) {
      const actor = actors.get(request);
      if (actor === undefined) throw unauthorized();
      return actor;
    },
    header(request, name) {
      const value = request.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    onClose(end) {
      closing.add(end);
      return () => closing.delete(end);
    },
  };

  app.addHook('onRequest', async (request, reply) => {
    const actor = await authenticated(prepared, request);
    if (actor !== undefined) {
      actors.set(request, actor);
      return;
    }
    // A browser opening the explorer without credentials gets the page, which asks for a token.
    if (prepared.explorer !== undefined && request.method === 'GET' && request.url.split('?')[0] === '/' && /text\/html/.test(request.headers.accept ?? '')) {
      return explorerPage(reply.code(401));
    }
    throw unauthorized();
  });
  const { onResponse } = prepared;
  if (onResponse !== undefined) {
    app.addHook('onResponse', async (request, reply) => {
      onResponse({ method: request.method, path: request.url.split('?')[0] as string, status: reply.statusCode, ms: reply.elapsedTime });
    });
  }
  app.setNotFoundHandler((request, reply) => {
    const problem = notFound(`${request.method} ${request.url.split('?')[0] as string}`);
    return reply.code(404).send(problem.body());
  });
  app.setErrorHandler((error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let problem = error instanceof Problem ? error : fromFastify(error as FastifyError, prepared.bodyLimit);
    if (problem === undefined && error instanceof InvalidEventError) problem = new Problem(400, error.code, error.message);
    if (problem === undefined && error instanceof LogClosedError) problem = new Problem(503, 'UNAVAILABLE', 'the log is closed');
    if (problem === undefined) {
      prepared.onError(error);
      problem = new Problem(500, 'INTERNAL', `internal error${error instanceof CoherenceError ? ` (${error.code})` : ''}; the server has logged it`);
    }
    if (problem.status === 401 && request.headers.authorization !== undefined) reply.header('www-authenticate', 'Bearer error="invalid_token"');
    return reply.code(problem.status).send(problem.body());
  });

  commandRoute(app, gateway);
  viewRoutes(app, gateway);
  factRoute(app, gateway);
  if (prepared.events !== undefined) eventStream(app, gateway, prepared.events.allow);
  if (prepared.explorer !== undefined) explorerRoutes(app, gateway, prepared.explorer.allow);

  const follows = [...prepared.views.values()].filter((view) => view.follow).map((view) => view.projection.follow({ onError: prepared.onError }));
  try {
    await app.listen({ host: prepared.host, port: prepared.port });
  } catch (error) {
    await Promise.all(follows.map((stop) => stop()));
    throw error;
  }
  // Requests in flight, so that close() can let them finish and then drop the connections
  // left: Node's close() waits for sockets a client opened and never used (fetch opens spares)
  // until the client's own idle timeout.
  let inFlight = 0;
  let drained: (() => void) | undefined;
  app.server.on('request', (_request, response) => {
    inFlight++;
    response.once('close', () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
  });
  const { port } = app.server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  const host = prepared.host;
  return Object.freeze({
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    close(): Promise<void> {
      closed ??= (async () => {
        for (const end of [...closing]) end();
        const stopped = app.close();
        if (inFlight > 0) await new Promise<void>((resolve) => { drained = resolve; });
        app.server.closeAllConnections();
        await stopped;
        await Promise.all(follows.map((stop) => stop()));
      })();
      return closed;
    },
  });
}
