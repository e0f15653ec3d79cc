/**
 * date-fns Durations as options (`keyTtl`, `ttl`): checked, and turned into an instant.
 */
import type { Duration } from 'date-fns';
import { add } from 'date-fns/add';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from './json-pointer.ts';
import { isPlainObject } from './validate.ts';

export type { Duration };

const DURATION_UNITS = new Set(['years', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds']);

/**
 * Checks a date-fns Duration: only its units, finite non-negative numbers, not all zero.
 * @throws InvalidArgumentError naming the option.
 */
export function parseDuration(value: unknown, name: string): Duration {
  if (!isPlainObject(value)) throw new InvalidArgumentError(`${name}: expected a date-fns Duration such as { days: 30 }, got ${describe(value)}`);
  let total = 0;
  for (const [unit, amount] of Object.entries(value)) {
    if (!DURATION_UNITS.has(unit)) throw new InvalidArgumentError(`${name}.${unit}: expected one of ${[...DURATION_UNITS].join(', ')}, got an unknown unit`);
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      throw new InvalidArgumentError(`${name}.${unit}: expected a finite number >= 0, got ${describe(amount)}`);
    }
    total += amount;
  }
  if (total === 0) throw new InvalidArgumentError(`${name}: expected a Duration longer than zero, got ${JSON.stringify(value)}`);
  expiryAfter(Date.now(), value as Duration, name);
  return value as Duration;
}

/**
 * The instant `duration` after `now`.
 * @throws InvalidArgumentError when it falls outside what a Date can hold.
 */
export function expiryAfter(now: number, duration: Duration, name: string): number {
  const expiresAt = add(now, duration).getTime();
  if (!Number.isFinite(expiresAt)) throw new InvalidArgumentError(`${name}: expected a Duration that ends within the range of a Date, got ${JSON.stringify(duration)}`);
  return expiresAt;
}
