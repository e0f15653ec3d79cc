/**
 * coherence/http: the log served over HTTP. Commands (`POST /commands/:name`), facts
 * (`GET /facts/:name`), views (`GET /views/:name/...`), the live event stream (`GET /events`,
 * Server-Sent Events) and the explorer page (`GET /`), each route open only under the condition
 * its owner states; the actor always comes from `authenticate`.
 */
export { serve } from './serve.ts';
export type { Server } from './serve.ts';
export { allOf, anyOf, owner, role } from './conditions.ts';
export type { Actor, Condition, ConditionContext } from './conditions.ts';
export { bearer } from './bearer.ts';
export type { BearerOptions, JwkSet, JwtClaims } from './bearer.ts';
export type { Authenticate, CommandRoute, FactRoute, HttpRequest, RequestLogEntry, ServeOptions, ViewRoute } from './options.ts';
export type { StandardSchema } from './request.ts';
export type { HttpErrorCode } from './problem.ts';
