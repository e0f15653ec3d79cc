/**
 * Parsing what the command line was given, and the two ways a command fails besides the API's
 * own errors.
 */
import { InvalidArgumentError } from '../index.ts';

/** A mistake in how the command was called: exit code 2, with the message. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A command that cannot do its work (no store there, a file that cannot be read): exit code 1.
 * @example
 * throw new CliError(`no store at ${dir}`);
 */
export class CliError extends Error {
  override name = 'CliError';
}

/** Parses `kind:id` (an id of digits is a number: `order:7`; quote it to keep a string: `order:"7"`) or a JSON array. */
export function parseIdentity(text: string, what = 'identity'): [string, string | number] {
  if (text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UsageError(`${what}: expected kind:id or a JSON array ["kind", id], got ${JSON.stringify(text)}`);
    }
    if (Array.isArray(parsed) && parsed.length === 2) return parsed as [string, string | number];
    throw new UsageError(`${what}: expected a JSON array ["kind", id], got ${JSON.stringify(text)}`);
  }
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) throw new UsageError(`${what}: expected kind:id, got ${JSON.stringify(text)}`);
  const kind = text.slice(0, colon);
  const id = text.slice(colon + 1);
  if (/^-?(0|[1-9][0-9]*)$/.test(id) && Number.isSafeInteger(Number(id))) return [kind, Number(id)];
  if (id.length >= 2 && id.startsWith('"') && id.endsWith('"')) return [kind, id.slice(1, -1)];
  return [kind, id];
}

/** Parses a non-negative integer option. */
export function parseSeq(text: string, what: string, min = 0): number {
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new UsageError(`${what}: expected an integer >= ${min}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

const UNITS: Record<string, string> = { y: 'years', mo: 'months', w: 'weeks', d: 'days', h: 'hours', m: 'minutes', s: 'seconds' };

/** Parses a lifetime such as `30d`, `12h`, `1y6mo`, or a JSON date-fns Duration. */
export function parseDuration(text: string): Record<string, number> {
  if (text.startsWith('{')) {
    try {
      return JSON.parse(text) as Record<string, number>;
    } catch {
      throw new UsageError(`--ttl: expected a duration such as 30d or {"days":30}, got ${JSON.stringify(text)}`);
    }
  }
  const duration: Record<string, number> = {};
  const rest = text.replace(/([0-9]+)(mo|y|w|d|h|m|s)/g, (_, amount: string, unit: string) => {
    duration[UNITS[unit] as string] = Number(amount);
    return '';
  });
  if (rest !== '' || Object.keys(duration).length === 0) {
    throw new UsageError(`--ttl: expected a duration such as 30d, 12h or 1y6mo (units y mo w d h m s), got ${JSON.stringify(text)}`);
  }
  return duration;
}

/**
 * Parses an ISO 8601 date option such as `2027-01-31` or `2027-01-31T12:00:00Z`.
 * @throws UsageError naming `what` for anything else.
 * @example
 * parseDate('2027-01-31', '--expires-at'); // 2027-01-31T00:00:00.000Z
 */
export function parseDate(text: string, what: string): Date {
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`${what}: expected an ISO 8601 date such as 2027-01-31 or 2027-01-31T12:00:00Z, got ${JSON.stringify(text)}`);
  }
  return date;
}

/**
 * An identity as the command line writes it (`customer:9`, `order:"7"`): what parseIdentity reads.
 * @example
 * formatIdentity(['order', '7']); // 'order:"7"'
 */
export function formatIdentity([kind, id]: readonly [string, string | number]): string {
  if (typeof id === 'number' || !/^-?(0|[1-9][0-9]*)$/.test(id)) return `${kind}:${id}`;
  return `${kind}:"${id}"`;
}

/**
 * Runs `work`; an InvalidArgumentError about one of the API's options is reported as the flag the
 * user typed (`--expires-at: ...` rather than `options.expiresAt: ...`).
 * @throws UsageError for such an error, with the original as its cause.
 * @example
 * await asFlags({ 'options.expiresAt': '--expires-at' }, () => log.keys.create(key, { expiresAt }));
 */
export async function asFlags<T>(flags: Record<string, string>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    for (const [option, flag] of Object.entries(flags)) {
      if (error.message.startsWith(`${option}:`) || error.message.startsWith(`${option}.`)) {
        throw new UsageError(`${flag}${error.message.slice(option.length)}`, { cause: error });
      }
    }
    throw error;
  }
}
