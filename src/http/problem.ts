/**
 * What the gateway answers when it refuses a request: a status and a JSON body of at least
 * `{ error, message }`, `error` a stable code (those of `CoherenceError`, and the gateway's own
 * below), `message` for people, naming what was expected and never echoing a payload or a token.
 */

/** The codes of the gateway's own refusals (a `CoherenceError` keeps its own code: `INVALID_EVENT`, ...). */
export type HttpErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_BASE'
  | 'REJECTED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAVAILABLE'
  | 'INTERNAL';

/** A refusal on its way to the client: thrown inside a route, answered by the error handler. */
export class Problem extends Error {
  readonly status: number;
  readonly code: string;
  /** More members of the body: `head`, `conflicts`, `reason`, `details`, `issues`. */
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(status: number, code: HttpErrorCode | string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }

  /** The JSON body: `{ error, message, ...extra }`. */
  body(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

export const unauthorized = (): Problem => new Problem(401, 'UNAUTHORIZED', 'expected credentials that authenticate an actor');
export const forbidden = (what: string): Problem => new Problem(403, 'FORBIDDEN', `${what}: the condition of this route does not allow this actor`);
export const notFound = (what: string): Problem => new Problem(404, 'NOT_FOUND', `${what}: not found`);
export const badRequest = (message: string, extra?: Record<string, unknown>): Problem => new Problem(400, 'BAD_REQUEST', message, extra);
