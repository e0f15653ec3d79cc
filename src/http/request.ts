/**
 * The parts of a request the gateway reads, checked before anything reaches the log: headers,
 * path parameters, query strings and bodies, with valibot schemas. What fails is a 400 naming
 * the part and what was expected, never quoting what came (it may be a payload or a token).
 */
import { array, check, custom, object, optional, pipe, regex, safeParse, string, transform, union, type GenericSchema } from 'valibot';
import type { Identity } from '../model/types.ts';
import { badRequest } from './problem.ts';

/**
 * A Standard Schema (https://standardschema.dev), as zod, valibot, arktype and others implement
 * it: a command's or a fact's own check of what it takes.
 */
export interface StandardSchema {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown): StandardResult | Promise<StandardResult>;
  };
}

type StandardResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | { readonly issues: readonly { readonly message: string; readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined }[] };

/** Deepest nesting of a body the gateway takes: deciders never need more, and a deep one costs stack. */
export const MAX_DEPTH = 64;
/** Idempotency keys: printable ASCII, at most this long (the log takes 512 bytes; the gateway scopes the key). */
export const MAX_IDEMPOTENCY_KEY = 255;

const seqText = pipe(
  string(),
  regex(/^(?:0|[1-9][0-9]*)$/, 'expected a seq, decimal digits'),
  transform(Number),
  check((n: number) => Number.isSafeInteger(n), 'expected a safe integer'),
);
const texts = union([string(), array(string())], 'expected text');
const identityText = pipe(string(), regex(/^[^:]+:.+$/s, 'expected kind:id'), transform(parseIdentity));

function depth(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (limit === 0) return false;
  for (const member of Object.values(value)) if (!depth(member, limit - 1)) return false;
  return true;
}

/** A JSON body: any value, nested at most MAX_DEPTH deep (the parser already refused `__proto__`). */
const jsonBody = custom<unknown>((value) => value !== undefined && depth(value, MAX_DEPTH), `expected a JSON value nested at most ${MAX_DEPTH} deep`);

const eventsQuery = object({ from: optional(pipe(seqText, check((n: number) => n >= 1, 'expected a seq >= 1'))), kind: optional(texts) });
const explorerEventsQuery = object({
  kind: optional(string()),
  aggregate: optional(identityText),
  actor: optional(identityText),
  before: optional(seqText),
  limit: optional(pipe(seqText, check((n: number) => n >= 1 && n <= 1000, 'expected 1 to 1000'))),
});
const aggregateQuery = object({ aggregate: identityText });

/** Runs a valibot schema; a failure is a 400 naming `part` and the place in it. */
function parse<T>(schema: GenericSchema<unknown, T>, input: unknown, part: string): T {
  const result = safeParse(schema, input);
  if (result.success) return result.output;
  const [issue] = result.issues;
  const place = issue.path?.map((item) => String(item.key)).join('.');
  throw badRequest(`${part}${place === undefined || place === '' ? '' : `.${place}`}: ${issue.message}`);
}

/**
 * An id as the command line reads it: decimal digits are a number (`order:7`), quotes keep a
 * string (`order:"7"`), anything else is the string itself.
 */
export function parseId(text: string): string | number {
  if (/^-?(?:0|[1-9][0-9]*)$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) return text.slice(1, -1);
  return text;
}

function parseIdentity(text: string): Identity {
  const colon = text.indexOf(':');
  return [text.slice(0, colon), parseId(text.slice(colon + 1))];
}

/** `If-Match: "N"` → base N; `*` or none → no base (the service reads its own). */
export function baseOf(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  const match = /^\s*"(0|[1-9][0-9]*)"\s*$/.exec(header);
  if (match === null || !Number.isSafeInteger(Number(match[1]))) throw badRequest('If-Match: expected the position your view is based on in quotes, as a view\'s ETag gives it ("42")');
  return Number(match[1]);
}

/** `Idempotency-Key`: 1 to 255 characters of printable ASCII, or none. */
export function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!new RegExp(`^[\\x21-\\x7e](?:[\\x20-\\x7e]{0,${MAX_IDEMPOTENCY_KEY - 2}}[\\x21-\\x7e])?$`).test(header)) {
    throw badRequest(`Idempotency-Key: expected 1 to ${MAX_IDEMPOTENCY_KEY} characters of printable ASCII, got ${header.length} character(s) that are not`);
  }
  return header;
}

/** `If-None-Match` holds the current ETag: the client's copy is current (304). */
export function matchesETag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed === etag || trimmed === `W/${etag}`;
  });
}

/** A command body, checked as JSON, then by the command's own schema when it has one. */
export async function commandOf(body: unknown, schema: StandardSchema | undefined): Promise<unknown> {
  const command = parse(jsonBody, body, 'body');
  if (schema === undefined) return command;
  return standard(schema, command, 'body');
}

/** A value checked by a Standard Schema; its issues come back in the 400 body. */
export async function standard(schema: StandardSchema, value: unknown, part: string): Promise<unknown> {
  const result = await schema['~standard'].validate(value);
  if (result.issues === undefined) return result.value;
  const issues = result.issues.map((issue) => ({
    message: issue.message,
    path: (issue.path ?? []).map((item) => String(typeof item === 'object' ? item.key : item)),
  }));
  const [first] = issues;
  throw badRequest(`${part}${first === undefined || first.path.length === 0 ? '' : `.${first.path.join('.')}`}: ${first?.message ?? 'invalid'}`, { issues });
}

/** `GET /events?from=&kind=`: the first seq (a `Last-Event-ID` counts as the one before it) and the kinds. */
export function eventsArgs(query: unknown, lastEventId: string | undefined): { from: number | undefined; kinds: string[] | undefined } {
  const { from, kind } = parse(eventsQuery, query, 'query');
  const kinds = kind === undefined ? undefined : [kind].flat();
  if (lastEventId !== undefined) return { from: parse(seqText, lastEventId, 'Last-Event-ID') + 1, kinds };
  return { from, kinds };
}

/** The explorer's log query: filters, and the page (newest first, before a seq). */
export function explorerEventsArgs(query: unknown) {
  return parse(explorerEventsQuery, query, 'query');
}

/** The explorer's aggregate query. */
export function aggregateArg(query: unknown): Identity {
  return parse(aggregateQuery, query, 'query').aggregate;
}

/** Query values as a condition and a fact see them: text, or lists of text for repeated names. */
export function argsOf(query: unknown): Record<string, string | string[]> {
  const args: Record<string, string | string[]> = {};
  if (typeof query !== 'object' || query === null) return args;
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))) args[name] = value as string | string[];
  }
  return args;
}
