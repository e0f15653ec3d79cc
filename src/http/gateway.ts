/**
 * What every route of one server shares: the log, the checked options, and the actor that
 * `authenticate` found for each request.
 */
import type { FastifyRequest } from 'fastify';
import type { Log } from '../api/log.ts';
import type { LogCore } from '../log/log-core.ts';
import type { Actor } from './conditions.ts';
import type { Prepared } from './options.ts';

export interface Gateway {
  readonly log: Log;
  readonly core: LogCore;
  readonly options: Prepared;
  /** The actor of a request that passed authentication (every request a route sees). */
  actor(request: FastifyRequest): Actor;
  /** One request header, repeated ones joined; undefined when absent. */
  header(request: FastifyRequest, name: string): string | undefined;
  /** Calls `end` when the server closes (the event streams end then, so `close()` can finish). */
  onClose(end: () => void): () => void;
}
