/**
 * `bearer`: an authenticator for `serve` that verifies `Authorization: Bearer <JWT>` with jose
 * (RFC 7519): the signature, and `exp` and `nbf` against the clock (and `iss`/`aud` when asked).
 * A token that fails any check authenticates nobody (401); the actor comes from its claims only.
 */
import type { JSONWebKeySet } from 'jose';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from '../model/json-pointer.ts';
import type { Actor } from './conditions.ts';
import type { Authenticate } from './options.ts';

/**
 * A token's claims once verified (RFC 7519 names a few; the rest are the issuer's). Declared
 * here rather than taken from jose, so that the types of coherence/http need no DOM library.
 */
export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  [claim: string]: unknown;
}

/** A JSON Web Key Set (RFC 7517): the public keys tokens are verified against. */
export interface JwkSet {
  keys: { [member: string]: unknown }[];
}

/** Options of {@link bearer}: a `secret` (HMAC) or a `jwks` (public keys), not both. */
export interface BearerOptions {
  /** The shared secret of HS256 tokens (HS384/HS512 through `algorithms`); at least 32 bytes. */
  secret?: string | Uint8Array;
  /** The issuer's public keys: the URL of its JWKS (fetched and cached by jose), or a key set itself. */
  jwks?: string | JwkSet;
  /** Accepted algorithms. Default `['HS256']` with a secret, `['RS256', 'PS256', 'ES256', 'EdDSA']` with a JWKS. */
  algorithms?: string[];
  /** Expected `iss`, when given. */
  issuer?: string | string[];
  /** Expected `aud`, when given. */
  audience?: string | string[];
  /** Leeway for `exp` and `nbf`, in seconds. Default 0. */
  clockTolerance?: number;
  /** The time tokens are checked at. Default: now. */
  clock?: () => Date;
  /**
   * The actor of verified claims, or undefined to refuse the token. Default: `sub` as
   * `['user', sub]` (see `kind`) with the strings of the `roles` claim as roles.
   */
  actor?: (claims: JwtClaims) => Actor | undefined;
  /** The kind of the default actor's identity. Default `'user'`. */
  kind?: string;
  /** The claim holding the default actor's roles. Default `'roles'`. */
  rolesClaim?: string;
  /**
   * How many verified tokens to remember, so that a client's next request with the same token
   * costs a lookup and the `exp`/`nbf` check instead of a signature check. A remembered token
   * stays valid until its `exp` even if its key leaves the JWKS meanwhile. Default 1000; 0: none.
   */
  cacheSize?: number;
}

type Jose = typeof import('jose');
let jose: Promise<Jose> | undefined;
/** jose loads on the first token, so a server that authenticates otherwise never loads it. */
const loadJose = (): Promise<Jose> => (jose ??= import('jose'));

const OPTION_KEYS = new Set(['secret', 'jwks', 'algorithms', 'issuer', 'audience', 'clockTolerance', 'clock', 'actor', 'kind', 'rolesClaim', 'cacheSize']);

/** Whether verified claims are still in force at `now` (seconds), as jose checks `exp` and `nbf`. */
function inForce(claims: JwtClaims, now: number, tolerance: number): boolean {
  if (typeof claims.exp === 'number' && claims.exp <= now - tolerance) return false;
  return !(typeof claims.nbf === 'number' && claims.nbf > now + tolerance);
}

function defaultActor(kind: string, rolesClaim: string): (claims: JwtClaims) => Actor | undefined {
  return (claims) => {
    if (typeof claims.sub !== 'string' || claims.sub.length === 0) return undefined;
    const roles = claims[rolesClaim];
    return { id: [kind, claims.sub], roles: Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [] };
  };
}

/**
 * An authenticator of bearer JWTs: HS256 with a `secret`, or RS/PS/ES/EdDSA against a `jwks`
 * (a URL or a local key set). Expired (`exp`), not yet valid (`nbf`), badly signed, malformed or
 * otherwise failing tokens authenticate nobody; an unreachable JWKS is an error (a 500).
 *
 * @throws InvalidArgumentError for bad options: neither or both of `secret` and `jwks`, a secret
 *   under 32 bytes, an unknown option.
 * @example
 * const server = await serve(log, {
 *   authenticate: bearer({ jwks: 'https://login.example.com/.well-known/jwks.json', audience: 'library' }),
 *   commands: { reserve: { service, allow: role('member') } },
 * });
 */
export function bearer(options: BearerOptions): Authenticate {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`options: expected { secret } or { jwks }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`options.${key}: expected one of ${[...OPTION_KEYS].join(', ')}, got an unknown option`);
  }
  const { secret, jwks, issuer, audience, clockTolerance = 0, clock, kind = 'user', rolesClaim = 'roles', cacheSize = 1000 } = options;
  if (typeof cacheSize !== 'number' || !Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new InvalidArgumentError(`options.cacheSize: expected an integer >= 0, got ${describe(cacheSize)}`);
  if ((secret === undefined) === (jwks === undefined)) throw new InvalidArgumentError('options: expected a secret or a jwks, and only one of them');
  const secretBytes = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  if (secretBytes !== undefined && (!(secretBytes instanceof Uint8Array) || secretBytes.length < 32)) {
    throw new InvalidArgumentError(`options.secret: expected at least 32 bytes (a string or a Uint8Array), got ${secretBytes instanceof Uint8Array ? `${secretBytes.length} bytes` : describe(secret)}`);
  }
  const algorithms = options.algorithms ?? (secret === undefined ? ['RS256', 'PS256', 'ES256', 'EdDSA'] : ['HS256']);
  if (!Array.isArray(algorithms) || algorithms.length === 0 || !algorithms.every((a) => typeof a === 'string')) {
    throw new InvalidArgumentError(`options.algorithms: expected a non-empty array of algorithm names, got ${describe(options.algorithms)}`);
  }
  if (typeof clockTolerance !== 'number' || !(clockTolerance >= 0)) throw new InvalidArgumentError(`options.clockTolerance: expected seconds >= 0, got ${describe(clockTolerance)}`);
  for (const [name, value] of [['clock', clock], ['actor', options.actor]] as const) {
    if (value !== undefined && typeof value !== 'function') throw new InvalidArgumentError(`options.${name}: expected a function, got ${describe(value)}`);
  }
  if (typeof kind !== 'string' || kind.length === 0) throw new InvalidArgumentError(`options.kind: expected a non-empty string, got ${describe(kind)}`);
  if (typeof rolesClaim !== 'string' || rolesClaim.length === 0) throw new InvalidArgumentError(`options.rolesClaim: expected a non-empty string, got ${describe(rolesClaim)}`);
  if (jwks !== undefined && typeof jwks === 'string') {
    try {
      new URL(jwks);
    } catch {
      throw new InvalidArgumentError('options.jwks: expected a URL or a key set { keys }, got a string that is not a URL');
    }
  }
  const toActor = options.actor ?? defaultActor(kind, rolesClaim);
  let keys: Promise<Parameters<Jose['jwtVerify']>[1]> | undefined;
  const key = (): Promise<Parameters<Jose['jwtVerify']>[1]> => (keys ??= loadJose().then((j) => {
    if (secretBytes !== undefined) return secretBytes;
    if (typeof jwks === 'string') return j.createRemoteJWKSet(new URL(jwks));
    return j.createLocalJWKSet(jwks as JSONWebKeySet);
  }));

  /** Verified tokens and their claims, oldest first (a Map keeps insertion order). */
  const verified = new Map<string, JwtClaims>();
  const remember = (jwt: string, claims: JwtClaims): void => {
    if (cacheSize === 0) return;
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string);
    verified.set(jwt, claims);
  };

  return async ({ headers }) => {
    const match = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i.exec(headers.authorization ?? '');
    if (match === null) return undefined;
    const jwt = match[1] as string;
    const known = verified.get(jwt);
    if (known !== undefined) {
      if (inForce(known, (clock?.() ?? new Date()).getTime() / 1000, clockTolerance)) return toActor(known);
      verified.delete(jwt);
      return undefined;
    }
    const j = await loadJose();
    let claims: JwtClaims;
    try {
      ({ payload: claims } = await j.jwtVerify(jwt, await key(), {
        algorithms,
        clockTolerance,
        ...(clock === undefined ? {} : { currentDate: clock() }),
        ...(issuer === undefined ? {} : { issuer }),
        ...(audience === undefined ? {} : { audience }),
      }));
    } catch (error) {
      // Every failed check of the token is a JOSEError; anything else (a JWKS that cannot be
      // fetched) is the server's trouble, not the client's.
      if (error instanceof j.errors.JOSEError && !(error instanceof j.errors.JWKSTimeout)) return undefined;
      throw error;
    }
    remember(jwt, claims);
    return toActor(claims);
  };
}
