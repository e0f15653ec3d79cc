/**
 * JSON Pointer (RFC 6901) parsing and the location rules that disjoint-path merging relies on.
 */

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * Whether a segment is an array index as RFC 6901 writes one: digits without a leading zero.
 * @example
 * isArrayIndex('10'); // true; isArrayIndex('01') and isArrayIndex('-') are false
 */
export function isArrayIndex(segment: string): boolean {
  return ARRAY_INDEX.test(segment);
}
// The same rules over the whole pointer, for the check that needs no segments. A forbidden name
// holds neither "~" nor "/", so a segment that unescapes to one is the name itself; and a "~" at
// the end of a segment is followed by "/" or the end, never by 0 or 1.
const BAD_ESCAPE = /~(?![01])/;
const FORBIDDEN_SEGMENT = /\/(?:__proto__|constructor|prototype)(?=\/|$)/;

/**
 * What is wrong with `pointer` as a JSON Pointer, exactly as {@link parsePointer} says it, or
 * undefined when nothing is. Allocates nothing for a good pointer (it is on the append path).
 * @example
 * pointerProblem('/a/b'); // undefined
 */
export function pointerProblem(pointer: unknown): string | undefined {
  if (typeof pointer === 'string' && (pointer === '' || (pointer.charCodeAt(0) === 0x2f && !BAD_ESCAPE.test(pointer) && !FORBIDDEN_SEGMENT.test(pointer)))) {
    return undefined;
  }
  const parsed = parsePointer(pointer);
  return typeof parsed === 'string' ? parsed : undefined;
}

/**
 * Whether valid JSON Pointer `pointer` equals `prefix` or lies under it, compared as strings: a
 * valid pointer has one spelling ("~" and "/" inside a segment are always "~0" and "~1"), so a
 * prefix that ends where a segment does is a prefix of the segments.
 * @example
 * pointerWithin('/card/number', '/card'); // true
 * pointerWithin('/cards', '/card'); // false
 */
export function pointerWithin(pointer: string, prefix: string): boolean {
  if (pointer.length === prefix.length) return pointer === prefix;
  return pointer.length > prefix.length && pointer.charCodeAt(prefix.length) === 0x2f && pointer.startsWith(prefix);
}

/**
 * Splits a pointer into unescaped segments, or returns a description of what is wrong with it.
 * Segments that could reach an object's prototype are refused, so no patch can pollute one.
 */
export function parsePointer(pointer: unknown): string[] | string {
  if (typeof pointer !== 'string') return `expected a JSON Pointer string, got ${describe(pointer)}`;
  if (pointer === '') return [];
  if (pointer[0] !== '/') return `expected a JSON Pointer starting with "/", got ${JSON.stringify(pointer)}`;
  const raw = pointer.slice(1).split('/');
  // Most pointers have no escapes: skip the unescaping work for them (it is on the append path).
  const escaped = pointer.includes('~');
  const segments: string[] = [];
  for (const segment of raw) {
    if (escaped && /~(?![01])/.test(segment)) {
      return `expected "~" to be escaped as "~0" or "~1", got ${JSON.stringify(pointer)}`;
    }
    const unescaped = escaped ? segment.replaceAll('~1', '/').replaceAll('~0', '~') : segment;
    if (FORBIDDEN_SEGMENTS.has(unescaped)) {
      return `expected no "${unescaped}" segment (it could reach an object prototype), got ${JSON.stringify(pointer)}`;
    }
    segments.push(unescaped);
  }
  return segments;
}

/**
 * The location a write through `segments` may change, for conflict purposes: a path into an array
 * (through an index or `-`) may shift every element, so it stands for the whole array. A numeric
 * object key is treated as an array index too; that can only report a conflict, never hide one.
 */
export function conflictLocation(segments: readonly string[]): readonly string[] {
  const arrayAt = segments.findIndex((s) => s === '-' || isArrayIndex(s));
  return arrayAt === -1 ? segments : segments.slice(0, arrayAt);
}

/** Two locations overlap when they are equal or one lies under the other. */
export function locationsOverlap(a: readonly string[], b: readonly string[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A short description of a value's type for error messages, never the value's content. It never
 * throws, even for a revoked Proxy.
 */
export function describe(value: unknown): string {
  try {
    return describeType(value);
  } catch {
    return 'an object that cannot be read';
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : 'a Date';
  switch (typeof value) {
    case 'undefined': return 'undefined';
    case 'string': return value.length <= 40 ? JSON.stringify(value) : 'a string';
    case 'number': return Number.isNaN(value) ? 'NaN' : String(value);
    case 'bigint': return 'a bigint';
    case 'boolean': return String(value);
    case 'function': return 'a function';
    case 'symbol': return 'a symbol';
    default: return 'an object';
  }
}
