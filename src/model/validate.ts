/**
 * The boundary: every argument a caller hands the log is checked here, once, and turned into the
 * internal shapes the rest of the code trusts. Nothing here touches storage.
 */
import { types } from 'node:util';
import { CoherenceError, InvalidArgumentError, InvalidEventError, ProjectionError } from '../errors.ts';
import { describe, parsePointer, pointerProblem } from './json-pointer.ts';
import type { ActionEvent, Identity, LogEvent, MergeMode, Operation } from './types.ts';

/** A validated action, normalised into fresh objects that share nothing mutable with the caller. */
export interface PreparedAction {
  type: 'action';
  timestamp: number;
  source: string;
  reason: string;
  actor: Identity;
  aggregate: Identity;
  patch: Operation[];
  triggers: Identity[];
  /**
   * The keys to encrypt with: one from `encrypt: { key }`, or (coherence's own appends only) the
   * several of `encrypt: { keys }`, under which values are sealed together (all are needed).
   */
  encrypt: { keys: Identity[]; paths: string[] | undefined } | undefined;
}

/** A validated effect. */
export interface PreparedEffect {
  type: 'effect';
  timestamp: number;
  source: string;
  reason: string;
  trigger: Identity;
}

export type PreparedEvent = PreparedAction | PreparedEffect;

/**
 * Thrown inside the validators with a path relative to the value being checked. `cause`: what
 * the caller's value threw when it was read (a getter, a revoked Proxy), if that is the problem.
 *
 * Paths are built only once something is wrong: a check of a nested value throws with the path
 * inside that value, and each level that catches it puts its own place in front ({@link within}),
 * so a good event costs no string building.
 */
class Problem {
  constructor(readonly path: string, readonly expectation: string, readonly cause?: unknown) {}
}

/**
 * What reading a caller's value threw, as a Problem at `path` (a Problem passes through): a
 * getter that throws or a revoked Proxy is bad input like any other, never a stray TypeError.
 */
function unreadable(path: string, error: unknown): Problem {
  if (error instanceof Problem) return error;
  const what = error instanceof Error ? `${error.name}: ${error.message}` : describe(error);
  return new Problem(path, `expected a value that can be read, got one that throws when read (${what})`, error);
}

/** `check(value, path)`, with what reading the value throws reported at `path`. */
function guarded<T>(check: (value: unknown, path: string) => T, value: unknown, path: string): T {
  try {
    return check(value, path);
  } catch (error) {
    throw unreadable(path, error);
  }
}

/** `object[key]`, with what reading it throws reported at the key's place under `parent`. */
function read(object: object, key: string | number, parent: string): unknown {
  try {
    return (object as Record<string | number, unknown>)[key];
  } catch (error) {
    throw unreadable(join(parent, key), error);
  }
}

/** `rest`, a path inside the value at `base`, as a path from where `base` is given. */
function under(base: string, rest: string): string {
  if (rest === '') return base;
  if (base === '') return rest;
  return rest.startsWith('[') ? base + rest : `${base}.${rest}`;
}

/** What checking the value at `base` threw (a Problem's path relative to that value), at `base`. */
function within(base: string, error: unknown): Problem {
  return error instanceof Problem ? new Problem(under(base, error.path), error.expectation, error.cause) : unreadable(base, error);
}

const MAX_IDENTITY_PART_BYTES = 512;
const MAX_JSON_DEPTH = 256;
const NEW_ACTION_KEYS = new Set(['source', 'timestamp', 'action', 'triggers', 'encrypt']);
const NEW_EFFECT_KEYS = new Set(['source', 'timestamp', 'effect']);
const ACTION_KEYS = new Set(['reason', 'actor', 'aggregate', 'patch']);
const EFFECT_KEYS = new Set(['reason', 'trigger']);
const MERGE_MODES: ReadonlySet<unknown> = new Set<MergeMode>(['none', 'disjoint-paths']);
const textEncoder = new TextEncoder();

function join(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkKeys(value: Record<string, unknown>, allowed: ReadonlySet<string>, path: string): void {
  for (const key in value) {
    if (!allowed.has(key)) {
      throw new Problem(join(path, key), `expected one of ${[...allowed].join(', ')}, got an unknown property`);
    }
  }
}

/** What is wrong with `value` as a non-empty, well-formed string, if anything. */
function textProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return `expected a non-empty string, got ${describe(value)}`;
  if (!value.isWellFormed()) return 'expected well-formed Unicode, got a lone surrogate';
  return undefined;
}

function checkText(value: unknown, path: string): string {
  const problem = textProblem(value);
  if (problem !== undefined) throw new Problem(path, problem);
  return value as string;
}

/** What is wrong with a part of an identity (kind or id) that is a non-empty string, if anything. */
function identityPartProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'expected no NUL character';
  if (value.length * 3 > MAX_IDENTITY_PART_BYTES && textEncoder.encode(value).length > MAX_IDENTITY_PART_BYTES) {
    return `expected at most ${MAX_IDENTITY_PART_BYTES} bytes of UTF-8`;
  }
  return undefined;
}

function checkIdentity(value: unknown, path: string): Identity {
  let isPair: boolean;
  try {
    isPair = Array.isArray(value) && value.length === 2;
  } catch (error) {
    throw unreadable(path, error);
  }
  if (!isPair) throw new Problem(path, `expected an identity [kind, id], got ${describe(value)}`);
  const pair = value as unknown[];
  const kind = read(pair, 0, path);
  const kindProblem = textProblem(kind) ?? identityPartProblem(kind as string);
  if (kindProblem !== undefined) throw new Problem(`${path}[0]`, kindProblem);
  const id: unknown = read(pair, 1, path);
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id)) throw new Problem(`${path}[1]`, `expected a safe integer id, got ${describe(id)}`);
  } else if (typeof id === 'string') {
    const idProblem = textProblem(id) ?? identityPartProblem(id);
    if (idProblem !== undefined) throw new Problem(`${path}[1]`, idProblem);
  } else {
    throw new Problem(`${path}[1]`, `expected a non-empty string or a safe integer id, got ${describe(id)}`);
  }
  return [kind as string, id];
}

function checkDate(value: unknown, path: string): number {
  let time: number;
  try {
    if (!(value instanceof Date)) throw new Problem(path, `expected a Date, got ${describe(value)}`);
    // Date.prototype.getTime itself: a Proxy of a Date passes instanceof but is no Date.
    time = Date.prototype.getTime.call(value);
  } catch (error) {
    throw unreadable(path, error);
  }
  if (Number.isNaN(time)) throw new Problem(path, 'expected a valid Date, got Invalid Date');
  return time;
}

/** What a JSON walk accepts and whether it copies. */
interface JsonRules {
  /** Return a fresh copy (patch values) or the value itself (a check only). */
  readonly copy: boolean;
  /** Accept valid Dates (they survive the store's msgpack, but not JSON). */
  readonly dates: boolean;
  /** What messages say was expected. */
  readonly expected: string;
}

const PATCH_VALUE: JsonRules = { copy: true, dates: false, expected: 'a JSON value' };
const STORED_STATE: JsonRules = { copy: false, dates: true, expected: 'a JSON value or a Date' };
const JSON_CHECK: JsonRules = { copy: false, dates: false, expected: 'a JSON value' };

/**
 * Checks that a value is JSON (what JSON.stringify/parse would round-trip unchanged) and returns
 * a copy of it, so the stored event and what append returns cannot change with the caller's
 * objects. With `rules` STORED_STATE, Dates pass too and nothing is copied. Problems carry paths
 * inside `value`; `ancestors` are the objects it lies in (none at the top).
 */
function copyJson(value: unknown, depth: number, ancestors: Set<object> | undefined, rules: JsonRules): unknown {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new Problem('', 'expected well-formed Unicode, got a lone surrogate');
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new Problem('', `expected ${rules.expected}, got ${describe(value)}`);
      // JSON has no negative zero (JSON.stringify(-0) is "0"), and neither does the store.
      return value === 0 ? 0 : value;
    case 'object':
      break;
    default:
      throw new Problem('', `expected ${rules.expected}, got ${describe(value)}`);
  }
  if (value === null) return null;
  if (depth > MAX_JSON_DEPTH) throw new Problem('', `expected JSON nested at most ${MAX_JSON_DEPTH} deep`);
  const seen = ancestors ?? new Set<object>();
  if (seen.has(value)) throw new Problem('', `expected ${rules.expected}, got a cycle`);
  seen.add(value);
  let copy: unknown = value;
  // The member being read or checked: a problem found there is reported at its place.
  let member: string | number | undefined;
  try {
    if (Array.isArray(value)) {
      const length = value.length;
      const array: unknown[] | undefined = rules.copy ? new Array(length) : undefined;
      for (let i = 0; i < length; i++) {
        member = i;
        const item = copyJson(value[i], depth + 1, seen, rules);
        if (array !== undefined) array[i] = item;
      }
      copy = array ?? value;
    } else if (isPlainObject(value)) {
      const object: Record<string, unknown> | undefined = rules.copy ? {} : undefined;
      for (const key of Object.keys(value)) {
        member = key;
        if (key === '__proto__') throw new Problem('', 'expected no "__proto__" key');
        const item = copyJson(value[key], depth + 1, seen, rules);
        if (object !== undefined) object[key] = item;
      }
      copy = object ?? value;
    } else if (!(rules.dates && value instanceof Date && !Number.isNaN(Date.prototype.getTime.call(value)))) {
      throw new Problem('', notJson(value, rules));
    }
  } catch (error) {
    throw member === undefined ? unreadable('', error) : within(join('', member), error);
  }
  seen.delete(value);
  return copy;
}

/** Why an object that is neither an array nor a plain object (nor, where allowed, a Date) does not pass. */
function notJson(value: object, rules: JsonRules): string {
  if (value instanceof Date) return rules.dates ? `expected ${rules.expected}, got an invalid Date` : `expected ${rules.expected}, got a Date (store it as an ISO string)`;
  const name = value.constructor?.name;
  return `expected ${rules.expected}, got ${typeof name === 'string' && name !== '' ? `an instance of ${name}` : describe(value)}`;
}

/**
 * Checks that a projection state can be stored and read back as it is: JSON values and Dates,
 * no cycle, nested at most 256 deep. Functions, symbols, BigInts, `undefined`, NaN, Maps and class
 * instances are refused: the store's msgpack would drop, change or choke on them.
 * @throws ProjectionError naming the projection, the seq of the event just folded and the `path`
 *   inside the state; its `cause` says what was wrong (or is what reading the state threw).
 * @example
 * assertStorableState(next, 'receipts', event.seq);
 */
export function assertStorableState(state: unknown, projection: string, seq: number): void {
  try {
    copyJson(state, 0, undefined, STORED_STATE);
  } catch (e) {
    const problem = unreadable('', e);
    const cause = new TypeError(problem.expectation, problem.cause === undefined ? undefined : { cause: problem.cause });
    throw new ProjectionError(projection, seq, cause, problem.path);
  }
}

/**
 * What is wrong with `value` as JSON (a value that JSON.stringify/parse would round-trip
 * unchanged, nested at most 256 deep), or undefined when nothing is: `path` is the place inside
 * it (`items[3].price`, `''` for the value itself); `cause`, what reading it threw, if that is
 * the problem. Nothing is copied.
 * @example
 * jsonProblem({ at: new Date() }); // { path: 'at', expectation: 'expected a JSON value, got a Date (store it as an ISO string)' }
 */
export function jsonProblem(value: unknown): { path: string; expectation: string; cause?: unknown } | undefined {
  try {
    copyJson(value, 0, undefined, JSON_CHECK);
    return undefined;
  } catch (e) {
    const { path, expectation, cause } = unreadable('', e);
    return cause === undefined ? { path, expectation } : { path, expectation, cause };
  }
}

/**
 * Checks one JSON Patch operation and returns a fresh one holding only the members its `op`
 * defines (RFC 6902 §4): `op` and `path` always, `value` for add, replace and test, `from` for
 * move and copy.
 *
 * Any other member is ignored, as §4 requires: "the operation will complete as if the undefined
 * member did not appear in the object". It is dropped here, so it is never stored, hashed or shown
 * to a reader; the stored operation is exactly what a conforming implementation applies. It is
 * dropped unread and unvalidated: a `value` holding a function on a `remove`, or a `from` on an
 * `add`, is no error, because refusing the operation for a member it does not have would not be
 * completing it "as if the member did not appear", and since the member never reaches the store,
 * nothing that is not JSON can get in that way. The members the operation does define keep every
 * check: a JSON Pointer `path` (and `from`) without `__proto__`, `constructor` or `prototype`
 * segments, a `value` that is JSON, a known `op`.
 *
 * @throws Problem naming the defined member that is wrong, its path inside the operation
 *   (prepareEvents makes it an InvalidEventError).
 * @example
 * checkOperation({ op: 'add', path: '/baz', value: 'qux', xyz: 123 }) // { op: 'add', path: '/baz', value: 'qux' }
 */
function checkOperation(value: unknown): Operation {
  if (!isPlainObject(value)) throw new Problem('', `expected an operation object, got ${describe(value)}`);
  const pointer = value.path;
  const problem = pointerProblem(pointer);
  if (problem !== undefined) throw new Problem('path', problem);
  switch (value.op) {
    case 'add':
    case 'replace':
    case 'test': {
      if (!('value' in value)) throw new Problem('value', `expected a value for "${value.op}", got none`);
      let copy: unknown;
      try {
        copy = copyJson(value.value, 0, undefined, PATCH_VALUE);
      } catch (error) {
        throw within('value', error);
      }
      return { op: value.op, path: pointer as string, value: copy };
    }
    case 'remove':
      if (pointer === '') throw new Problem('path', 'expected a location inside the document, got the root ""');
      return { op: 'remove', path: pointer as string };
    case 'move':
    case 'copy': {
      const from = value.from;
      const fromProblem = pointerProblem(from);
      if (fromProblem !== undefined) throw new Problem('from', fromProblem);
      const fromPointer = from as string;
      if (value.op === 'move' && (pointer + '/').startsWith(fromPointer + '/') && pointer !== fromPointer) {
        throw new Problem('from', `expected "from" not to contain "path" (RFC 6902 4.4), got ${JSON.stringify(fromPointer)}`);
      }
      return { op: value.op, path: pointer as string, from: fromPointer };
    }
    default:
      throw new Problem('op', `expected one of add, remove, replace, move, copy, test, got ${describe(value.op)}`);
  }
}

/** Checks an action; problems carry paths inside it. */
function checkAction(value: unknown): Pick<PreparedAction, 'reason' | 'actor' | 'aggregate' | 'patch'> {
  if (!isPlainObject(value)) throw new Problem('', `expected an action object, got ${describe(value)}`);
  checkKeys(value, ACTION_KEYS, '');
  const reason = checkText(value.reason, 'reason');
  const actor = checkIdentity(value.actor, 'actor');
  const aggregate = checkIdentity(value.aggregate, 'aggregate');
  const patch = value.patch;
  if (!Array.isArray(patch) || patch.length === 0) {
    throw new Problem('patch', `expected a non-empty array of operations, got ${Array.isArray(patch) ? 'an empty array' : describe(patch)}`);
  }
  const length = patch.length;
  const operations: Operation[] = new Array(length);
  for (let i = 0; i < length; i++) {
    try {
      operations[i] = checkOperation(patch[i]);
    } catch (error) {
      throw within(`patch[${i}]`, error);
    }
  }
  return { reason, actor, aggregate, patch: operations };
}

/**
 * An identity as a string, for maps and sets in memory (never stored): the kind, a NUL, then a
 * string id as it is or a number id after a second NUL. Identity parts hold no NUL and a string
 * id is never empty, so no two identities meet (7 and '7' included), and a key holds at most two
 * NULs in a row. They sort exactly as the earlier form (kind, NUL, `typeof` id, NUL, id) did:
 * the keys of a value sealed under several keys, and of a sealed state, are stored in this order
 * and bound into its associated data, so the order must never change.
 */
function identityKey(identity: Identity): string {
  const id = identity[1];
  return typeof id === 'string' ? `${identity[0]}\u0000${id}` : `${identity[0]}\u0000\u0000${id}`;
}

/**
 * Whether `value` is an identity equal to `identity`: an array of exactly its two parts (`===`
 * on each, which tells 7 from '7' as identityKey does). For values of unknown shape (what an
 * upcaster returned, a decoded index key) as well as identities.
 * @example
 * sameIdentity(['book', 7], ['book', 7]); // true; ['book', '7'] is another identity
 */
function sameIdentity(value: unknown, identity: Identity): boolean {
  return Array.isArray(value) && value.length === 2 && value[0] === identity[0] && value[1] === identity[1];
}

/** Whether `identities` holds `identity` (`===` on both parts, which tells 7 from '7' as identityKey does). */
function includesIdentity(identities: readonly Identity[], identity: Identity): boolean {
  for (const other of identities) if (other[0] === identity[0] && other[1] === identity[1]) return true;
  return false;
}

function checkIdentities(value: unknown, path: string): Identity[] {
  if (!Array.isArray(value)) throw new Problem(path, `expected an array of identities, got ${describe(value)}`);
  const length = value.length;
  const identities: Identity[] = new Array(length);
  // Duplicates are looked for by key only when there can be one.
  const seen = length > 1 ? new Set<string>() : undefined;
  for (let i = 0; i < length; i++) {
    let identity: Identity;
    try {
      identity = checkIdentity(value[i], '');
    } catch (error) {
      throw within(`${path}[${i}]`, error);
    }
    if (seen !== undefined) {
      const key = identityKey(identity);
      if (seen.has(key)) throw new Problem(`${path}[${i}]`, `expected no duplicate, got ${JSON.stringify(identity)} twice`);
      seen.add(key);
    }
    identities[i] = identity;
  }
  return identities;
}

const ENCRYPT_KEYS = new Set(['key', 'paths']);
const RESERVED_ENCRYPT_KEYS = new Set(['key', 'keys', 'paths']);

function checkEncrypt(value: unknown, path: string, reservedKinds: boolean): PreparedAction['encrypt'] {
  if (!isPlainObject(value)) throw new Problem(path, `expected { key, paths? }, got ${describe(value)}`);
  checkKeys(value, reservedKinds ? RESERVED_ENCRYPT_KEYS : ENCRYPT_KEYS, path);
  let keys: Identity[];
  if (reservedKinds && value.keys !== undefined) {
    if (value.key !== undefined) throw new Problem(path, 'expected key or keys, got both');
    keys = checkIdentities(value.keys, `${path}.keys`);
    if (keys.length === 0) throw new Problem(`${path}.keys`, 'expected at least one key, got none');
  } else {
    keys = [checkIdentity(value.key, `${path}.key`)];
  }
  if (value.paths === undefined) return { keys, paths: undefined };
  if (!Array.isArray(value.paths) || value.paths.length === 0) {
    throw new Problem(`${path}.paths`, `expected a non-empty array of JSON Pointers, got ${describe(value.paths)}`);
  }
  const paths = value.paths.map((p: unknown, i: number) => {
    const problem = pointerProblem(p);
    if (problem !== undefined) throw new Problem(`${path}.paths[${i}]`, problem);
    return p as string;
  });
  return { keys, paths };
}

function checkEvent(value: unknown, defaultTimestamp: number, reservedKinds: boolean): PreparedEvent {
  if (!isPlainObject(value)) throw new Problem('', `expected an event object, got ${describe(value)}`);
  const hasAction = value.action !== undefined;
  const hasEffect = value.effect !== undefined;
  if (hasAction === hasEffect) {
    throw new Problem('', `expected exactly one of "action" or "effect", got ${hasAction ? 'both' : 'neither'}`);
  }
  checkKeys(value, hasAction ? NEW_ACTION_KEYS : NEW_EFFECT_KEYS, '');
  const source = checkText(value.source, 'source');
  const timestamp = value.timestamp === undefined ? defaultTimestamp : checkDate(value.timestamp, 'timestamp');
  if (hasEffect) {
    const effect = value.effect;
    if (!isPlainObject(effect)) throw new Problem('effect', `expected an effect object, got ${describe(effect)}`);
    checkKeys(effect, EFFECT_KEYS, 'effect');
    const reason = checkText(effect.reason, 'effect.reason');
    if (effect.trigger === undefined) throw new Problem('effect.trigger', 'expected the trigger identity the effect is about, got none');
    return { type: 'effect', timestamp, source, reason, trigger: checkIdentity(effect.trigger, 'effect.trigger') };
  }
  let action: Pick<PreparedAction, 'reason' | 'actor' | 'aggregate' | 'patch'>;
  try {
    action = checkAction(value.action);
  } catch (error) {
    throw within('action', error);
  }
  if (!reservedKinds && action.aggregate[0].startsWith('$')) {
    throw new Problem('action.aggregate[0]', `expected a kind that does not start with "$" (those belong to coherence itself), got ${describe(action.aggregate[0])}`);
  }
  const triggers = value.triggers === undefined ? [] : guarded(checkIdentities, value.triggers, 'triggers');
  const encrypt = value.encrypt === undefined ? undefined : guarded((v, p) => checkEncrypt(v, p, reservedKinds), value.encrypt, 'encrypt');
  if (encrypt !== undefined) for (const key of encrypt.keys) if (!includesIdentity(triggers, key)) triggers.push(key);
  return { type: 'action', timestamp, source, reason: action.reason, actor: action.actor, aggregate: action.aggregate, patch: action.patch, triggers, encrypt };
}

/**
 * Validates an append batch. Actions on kinds starting with `$` are refused unless
 * `reservedKinds` (coherence's own appends: process states).
 * @throws InvalidArgumentError when `events` is not a non-empty array.
 * @throws InvalidEventError naming the first bad event and the path inside it.
 */
export function prepareEvents(events: unknown, defaultTimestamp: number, reservedKinds = false): PreparedEvent[] {
  let count: number;
  try {
    if (!Array.isArray(events) || events.length === 0) {
      throw new Problem('', `expected a non-empty array of events, got ${Array.isArray(events) ? 'an empty array' : describe(events)}`);
    }
    count = events.length;
  } catch (e) {
    return argumentError('events', e);
  }
  const prepared: PreparedEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    try {
      // What reading the event throws is the event's problem: its path inside the event is ''.
      prepared[i] = checkEvent((events as unknown[])[i], defaultTimestamp, reservedKinds);
    } catch (e) {
      const problem = unreadable('', e);
      throw new InvalidEventError(i, problem.path, problem.expectation, problem.cause === undefined ? undefined : { cause: problem.cause });
    }
  }
  return prepared;
}

/**
 * A problem with the argument `name` as the InvalidArgumentError the caller gets; an error
 * coherence threw passes through, and anything else the argument threw when read becomes the
 * cause of one.
 */
function argumentError(name: string, e: unknown): never {
  if (e instanceof CoherenceError) throw e;
  const problem = unreadable('', e);
  const inner = problem.path.replace(/^\./, '');
  const where = inner === '' ? name : inner.startsWith('[') ? `${name}${inner}` : `${name}.${inner}`;
  throw new InvalidArgumentError(`${where}: ${problem.expectation}`, problem.cause === undefined ? undefined : { cause: problem.cause });
}

/**
 * Runs the checks of a public function's arguments: whatever they throw that is not a
 * CoherenceError (a getter, a revoked Proxy) becomes an InvalidArgumentError naming `name`, with
 * the original as its `cause`.
 * @throws InvalidArgumentError as said; a CoherenceError from `check` passes through.
 * @example
 * const settings = atBoundary('options', () => prepareOpenOptions(options));
 */
export function atBoundary<T>(name: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    return argumentError(name, e);
  }
}

/** Arguments nested deeper than this are not copied by {@link readArgument} (options are shallow). */
const MAX_ARGUMENT_DEPTH = 8;

/**
 * An inert copy of an argument, read once: plain objects and arrays are copied (their getters
 * run here, once), Dates copied through Date.prototype.getTime; anything else is kept as it is.
 * Validation code can then read the copy freely: nothing in it throws when read.
 * @throws InvalidArgumentError naming `name` and the place inside it that threw when read, with
 *   what it threw as the `cause`.
 * @example
 * options = readArgument(options, 'options');
 */
export function readArgument<T>(value: T, name: string): T {
  try {
    return snapshot(value, 0) as T;
  } catch (e) {
    return argumentError(name, e);
  }
}

/** An inert copy of `value` (see {@link readArgument}); problems carry paths inside it. */
function snapshot(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_ARGUMENT_DEPTH) return value;
  // The member being read: what reading it throws is reported at its place.
  let member: string | number | undefined;
  try {
    if (Array.isArray(value)) {
      const copy: unknown[] = new Array(value.length);
      for (let i = 0; i < copy.length; i++) {
        member = i;
        copy[i] = snapshot(value[i], depth + 1);
      }
      return copy;
    }
    if (value instanceof Date) return new Date(Date.prototype.getTime.call(value));
    if (!isPlainObject(value)) return value;
    // No prototype, so that a "__proto__" key stays a key for the validators to refuse.
    const copy: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(value)) {
      member = key;
      copy[key] = snapshot(value[key], depth + 1);
    }
    return copy;
  } catch (error) {
    throw member === undefined ? unreadable('', error) : within(join('', member), error);
  }
}

/** Validated append options. */
export interface PreparedAppendOptions {
  base: number;
  resolved: ReadonlySet<number>;
  dryRun: boolean;
  merge: MergeMode;
  idempotencyKey: string | undefined;
}

const MAX_IDEMPOTENCY_KEY_BYTES = 512;
const APPEND_OPTION_KEYS = new Set(['base', 'resolved', 'dryRun', 'merge', 'idempotencyKey']);

const NO_SEQS: ReadonlySet<number> = new Set();

/**
 * The base of options that are a plain `{ base }` holding a valid seq (the common append), read
 * once, without the copy; undefined for anything else, which the full check then reads.
 */
function onlyBase(argument: unknown): number | undefined {
  if (typeof argument !== 'object' || argument === null || types.isProxy(argument) || Array.isArray(argument)) return undefined;
  if (Object.getPrototypeOf(argument) !== Object.prototype) return undefined;
  const keys = Object.keys(argument);
  if (keys.length !== 1 || keys[0] !== 'base') return undefined;
  const descriptor = Object.getOwnPropertyDescriptor(argument, 'base');
  const base: unknown = descriptor?.value;
  return typeof base === 'number' && Number.isSafeInteger(base) && base >= 0 ? base : undefined;
}

function checkSeq(value: unknown, path: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new Problem(path, `expected an integer >= ${min}, got ${describe(value)}`);
  }
  return value;
}

/**
 * Validates the options of `append`.
 * @throws InvalidArgumentError naming the option.
 */
export function prepareAppendOptions(argument: unknown): PreparedAppendOptions {
  const base = onlyBase(argument);
  if (base !== undefined) return { base, resolved: NO_SEQS, dryRun: false, merge: 'none', idempotencyKey: undefined };
  try {
    const options = snapshot(argument, 0);
    if (!isPlainObject(options)) throw new Problem('', `expected { base, resolved?, dryRun?, merge?, idempotencyKey? }, got ${describe(options)}`);
    checkKeys(options, APPEND_OPTION_KEYS, '');
    const base = checkSeq(options.base, 'base', 0);
    const resolved = new Set<number>();
    if (options.resolved !== undefined) {
      if (!Array.isArray(options.resolved)) throw new Problem('resolved', `expected an array of seqs, got ${describe(options.resolved)}`);
      options.resolved.forEach((seq: unknown, i: number) => {
        const checked = checkSeq(seq, `resolved[${i}]`, 1);
        if (resolved.has(checked)) throw new Problem(`resolved[${i}]`, `expected no duplicate, got ${checked} twice`);
        resolved.add(checked);
      });
    }
    if (options.dryRun !== undefined && typeof options.dryRun !== 'boolean') {
      throw new Problem('dryRun', `expected a boolean, got ${describe(options.dryRun)}`);
    }
    if (options.merge !== undefined && !MERGE_MODES.has(options.merge)) {
      throw new Problem('merge', `expected "none" or "disjoint-paths", got ${describe(options.merge)}`);
    }
    let idempotencyKey: string | undefined;
    if (options.idempotencyKey !== undefined) {
      idempotencyKey = checkText(options.idempotencyKey, 'idempotencyKey');
      if (textEncoder.encode(idempotencyKey).length > MAX_IDEMPOTENCY_KEY_BYTES) {
        throw new Problem('idempotencyKey', `expected at most ${MAX_IDEMPOTENCY_KEY_BYTES} bytes of UTF-8, got ${textEncoder.encode(idempotencyKey).length}`);
      }
    }
    return { base, resolved, dryRun: options.dryRun === true, merge: (options.merge as MergeMode | undefined) ?? 'none', idempotencyKey };
  } catch (e) {
    return argumentError('options', e);
  }
}

/**
 * Validates an identity given as an argument.
 * @throws InvalidArgumentError naming the argument.
 */
export function prepareIdentity(value: unknown, name: string): Identity {
  try {
    return checkIdentity(value, '');
  } catch (e) {
    return argumentError(name, e);
  }
}

/**
 * Validates a seq given as an argument.
 * @throws InvalidArgumentError naming the argument.
 */
export function prepareSeq(value: unknown, name: string, min: number): number {
  try {
    return checkSeq(value, '', min);
  } catch (e) {
    return argumentError(name, e);
  }
}

/** Validated read options. */
export interface PreparedReadOptions {
  from: number;
  aggregates: Identity[] | undefined;
  kinds: ReadonlySet<string> | undefined;
  replay: boolean;
  raw: boolean;
}

/**
 * Validates the options of `read`.
 * @throws InvalidArgumentError naming the option.
 */
export function prepareReadOptions(argument: unknown): PreparedReadOptions {
  try {
    const options = snapshot(argument, 0);
    if (options === undefined) return { from: 1, aggregates: undefined, kinds: undefined, replay: true, raw: false };
    if (!isPlainObject(options)) throw new Problem('', `expected { from?, aggregates?, kinds?, replay?, raw? }, got ${describe(options)}`);
    checkKeys(options, new Set(['from', 'aggregates', 'kinds', 'replay', 'raw']), '');
    const from = options.from === undefined ? 1 : checkSeq(options.from, 'from', 1);
    const aggregates = options.aggregates === undefined ? undefined : checkIdentities(options.aggregates, 'aggregates');
    let kinds: Set<string> | undefined;
    if (options.kinds !== undefined) {
      if (!Array.isArray(options.kinds)) throw new Problem('kinds', `expected an array of kinds, got ${describe(options.kinds)}`);
      kinds = new Set(options.kinds.map((k: unknown, i: number) => checkText(k, `kinds[${i}]`)));
    }
    for (const flag of ['replay', 'raw'] as const) {
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
        throw new Problem(flag, `expected a boolean, got ${describe(options[flag])}`);
      }
    }
    return { from, aggregates, kinds, replay: options.replay !== false, raw: options.raw === true };
  } catch (e) {
    return argumentError('options', e);
  }
}

/**
 * Validates an options object holding at most an optional function `name` (a progress callback).
 * @throws InvalidArgumentError naming the option.
 */
export function prepareCallback<F extends (...args: never[]) => unknown>(options: unknown, name: string): F | undefined {
  try {
    if (!isPlainObject(options)) throw new Problem('', `expected { ${name}? }, got ${describe(options)}`);
    const value = read(options, name, '');
    if (value !== undefined && typeof value !== 'function') throw new Problem(name, `expected a function, got ${describe(value)}`);
    return value as F | undefined;
  } catch (e) {
    return argumentError('options', e);
  }
}

export { identityKey, includesIdentity, isPlainObject, sameIdentity };

/**
 * Tells an action from an effect.
 * @throws InvalidArgumentError when `event` is not an object that can be read.
 *
 * @example
 * for await (const e of log.read()) if (isActionEvent(e)) console.log(e.action.aggregate);
 */
export function isActionEvent(event: LogEvent): event is ActionEvent {
  return atBoundary('event', () => 'action' in event);
}
