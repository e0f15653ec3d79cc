/**
 * What `serve` takes, and its check: every route names a condition, or `serve` refuses it.
 */
import type { Log } from '../api/log.ts';
import { serviceInternals } from '../commands/command-service.ts';
import type { CommandService } from '../commands/command-service.ts';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import { isPlainObject } from '../model/validate.ts';
import type { Projection } from '../projections/projection.ts';
import type { Actor, Condition } from './conditions.ts';
import type { StandardSchema } from './request.ts';

/** A request as `authenticate` sees it: header names lower-cased, repeated headers joined by ", ". */
export interface HttpRequest {
  readonly method: string;
  /** The path and query string, as sent. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
}

/** Who makes `request`, or undefined when it carries no valid credentials (401). */
export type Authenticate = (request: HttpRequest) => Actor | undefined | Promise<Actor | undefined>;

/** `POST /commands/:name`: the decider `name` of `service`. */
export interface CommandRoute {
  service: CommandService;
  allow: Condition;
  /** The command's own check (zod, valibot, any Standard Schema); a failure is a 400 with its issues. */
  schema?: StandardSchema;
}

/** `GET /facts/:name?...`: what `query` answers, for the query string's arguments. */
export interface FactRoute {
  query(args: Record<string, string | string[]>, context: { actor: Actor; log: Log }): unknown;
  allow: Condition;
  /** A check of the arguments (any Standard Schema); what it outputs is what `query` gets. */
  schema?: StandardSchema;
}

/** `GET /views/:name/:kind/:id` and `GET /views/:name?kind=`: a projection's states. */
export interface ViewRoute {
  projection: Projection<unknown>;
  allow: Condition;
  /**
   * Keep the projection caught up while serving (`projection.follow()`, stopped by `close()`).
   * Default true; false when the application follows it itself.
   */
  follow?: boolean;
}

/** One request as the access log tells it: never a body, a header or a query string. */
export interface RequestLogEntry {
  method: string;
  /** The path, without the query string. */
  path: string;
  status: number;
  ms: number;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0: any free port (the server's `port` says which). */
  port?: number;
  /** The only source of the actor: never the body, never a header the gateway reads itself. */
  authenticate: Authenticate;
  commands?: { [name: string]: CommandRoute };
  facts?: { [name: string]: FactRoute };
  views?: { [name: string]: ViewRoute };
  /** `GET /events`: the live stream, as Server-Sent Events. */
  events?: { allow: Condition };
  /** `GET /` and its data under `/explorer/`: the page to look at the log. */
  explorer?: { allow: Condition };
  /** Largest request body, in bytes; a larger one is a 413 before it is read. Default 1 MiB. */
  bodyLimit?: number;
  /** The `source` of the actions commands append. Default `'http'`. */
  source?: string;
  /** Hears of every request when it ends (the CLI prints them). */
  onResponse?: (entry: RequestLogEntry) => void;
  /** Hears of what a route's own code threw (a 500 went out). Default: written to stderr. */
  onError?: (error: unknown) => void;
}

/** The options as checked: every route with its condition, defaults filled in. */
export interface Prepared {
  host: string;
  port: number;
  authenticate: Authenticate;
  commands: Map<string, CommandRoute>;
  facts: Map<string, FactRoute>;
  views: Map<string, ViewRoute>;
  events: { allow: Condition } | undefined;
  explorer: { allow: Condition } | undefined;
  bodyLimit: number;
  source: string;
  onResponse: ((entry: RequestLogEntry) => void) | undefined;
  onError: (error: unknown) => void;
}

const OPTION_KEYS = new Set(['host', 'port', 'authenticate', 'commands', 'facts', 'views', 'events', 'explorer', 'bodyLimit', 'source', 'onResponse', 'onError']);
const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._~-]*$/;

function fn<T>(value: unknown, name: string): T {
  if (typeof value !== 'function') throw new InvalidArgumentError(`${name}: expected a function, got ${describe(value)}`);
  return value as T;
}

/** A route's condition: a route without one does not exist, so `serve` refuses it. */
function condition(route: Record<string, unknown>, name: string): Condition {
  if (typeof route.allow !== 'function') {
    throw new InvalidArgumentError(`${name}.allow: expected a condition (a function of { actor, ... }); a route without one does not exist, got ${describe(route.allow)}`);
  }
  return route.allow as Condition;
}

function routes<T>(value: unknown, name: string, keys: readonly string[], check: (route: Record<string, unknown>, path: string, key: string) => T): Map<string, T> {
  const found = new Map<string, T>();
  if (value === undefined) return found;
  if (!isPlainObject(value)) throw new InvalidArgumentError(`options.${name}: expected an object of routes by name, got ${describe(value)}`);
  for (const [key, route] of Object.entries(value)) {
    const path = `options.${name}.${key}`;
    if (!ROUTE_NAME.test(key)) throw new InvalidArgumentError(`options.${name}: expected route names of letters, digits and ._~-, got ${JSON.stringify(key)}`);
    if (!isPlainObject(route)) throw new InvalidArgumentError(`${path}: expected { ${keys.join(', ')} }, got ${describe(route)}`);
    for (const member of Object.keys(route)) {
      if (!keys.includes(member)) throw new InvalidArgumentError(`${path}.${member}: expected one of ${keys.join(', ')}, got an unknown option`);
    }
    found.set(key, check(route, path, key));
  }
  return found;
}

function schema(value: unknown, name: string): { schema?: StandardSchema } {
  if (value === undefined) return {};
  const standard = (value as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
  if (typeof value !== 'object' || value === null || typeof standard?.validate !== 'function') {
    throw new InvalidArgumentError(`${name}: expected a Standard Schema (zod, valibot, ...), got ${describe(value)}`);
  }
  return { schema: value as StandardSchema };
}

function single(value: unknown, name: string): { allow: Condition } | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) throw new InvalidArgumentError(`options.${name}: expected { allow }, got ${describe(value)}`);
  for (const member of Object.keys(value)) if (member !== 'allow') throw new InvalidArgumentError(`options.${name}.${member}: expected only allow, got an unknown option`);
  return { allow: condition(value, `options.${name}`) };
}

/**
 * Checks the options of `serve`.
 * @throws InvalidArgumentError naming the option; for a route without a condition above all.
 */
export function prepareServeOptions(options: unknown): Prepared {
  if (!isPlainObject(options)) throw new InvalidArgumentError(`options: expected { authenticate, commands?, facts?, views?, events?, explorer?, ... }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  const { host = '127.0.0.1', port = 0, bodyLimit = 1 << 20, source = 'http' } = options;
  if (typeof host !== 'string' || host.length === 0) throw new InvalidArgumentError(`options.host: expected a host name or address, got ${describe(host)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`options.port: expected an integer from 0 to 65535, got ${describe(port)}`);
  if (typeof bodyLimit !== 'number' || !Number.isSafeInteger(bodyLimit) || bodyLimit < 1) throw new InvalidArgumentError(`options.bodyLimit: expected a positive number of bytes, got ${describe(bodyLimit)}`);
  if (typeof source !== 'string' || source.length === 0) throw new InvalidArgumentError(`options.source: expected a non-empty string, got ${describe(source)}`);
  const commands = routes(options.commands, 'commands', ['service', 'allow', 'schema'], (route, path, name) => {
    const internals = serviceInternals(route.service);
    if (internals === undefined) throw new InvalidArgumentError(`${path}.service: expected a command service from createCommandService, got ${describe(route.service)}`);
    if (!internals.deciders.has(name)) throw new InvalidArgumentError(`${path}: expected the name of one of the service's deciders (${[...internals.deciders.keys()].join(', ')}), got ${JSON.stringify(name)}`);
    return { service: route.service as CommandService, allow: condition(route, path), ...schema(route.schema, `${path}.schema`) };
  });
  const facts = routes(options.facts, 'facts', ['query', 'allow', 'schema'], (route, path) => ({
    query: fn<FactRoute['query']>(route.query, `${path}.query`),
    allow: condition(route, path),
    ...schema(route.schema, `${path}.schema`),
  }));
  const views = routes(options.views, 'views', ['projection', 'allow', 'follow'], (route, path) => {
    const projection = route.projection as Projection<unknown> | undefined;
    if (typeof projection !== 'object' || projection === null || typeof projection.get !== 'function' || typeof projection.entries !== 'function') {
      throw new InvalidArgumentError(`${path}.projection: expected a projection from log.projection(...), got ${describe(projection)}`);
    }
    if (route.follow !== undefined && typeof route.follow !== 'boolean') throw new InvalidArgumentError(`${path}.follow: expected a boolean, got ${describe(route.follow)}`);
    return { projection, allow: condition(route, path), follow: route.follow !== false };
  });
  return {
    host,
    port,
    authenticate: fn<Authenticate>(options.authenticate, 'options.authenticate'),
    commands,
    facts,
    views,
    events: single(options.events, 'events'),
    explorer: single(options.explorer, 'explorer'),
    bodyLimit,
    source,
    onResponse: options.onResponse === undefined ? undefined : fn(options.onResponse, 'options.onResponse'),
    onError: options.onError === undefined ? (error: unknown) => { process.stderr.write(`coherence/http: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`); } : fn(options.onError, 'options.onError'),
  };
}
