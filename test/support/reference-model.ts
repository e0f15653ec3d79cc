/**
 * A slow, obviously-correct in-memory model of the log (SPEC sections 1, 3 and 5), used as an
 * oracle by the model-based tests: the same commands run against it and against the real log,
 * and the answers must be deep-equal. Every rule is written the way the spec words it, with
 * linear scans and no indexes, so it shares no cleverness (and no bugs) with the implementation.
 * Encryption (section 4) is out of its scope.
 */
import jsonPatch from 'fast-json-patch';
import type {
  ActionEvent,
  AppendOptions,
  AppendResult,
  Conflict,
  EffectEvent,
  Identity,
  LogEvent,
  NewEvent,
  Operation,
  ReadOptions,
} from '../../src/index.ts';

export function sameIdentity(a: Identity, b: Identity): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

function isAction(event: LogEvent): event is ActionEvent {
  return 'action' in event;
}

/** The segments of a JSON Pointer, unescaped (RFC 6901). */
function segments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/**
 * The location a pointer may change: a step into an array (an index or `-`) can shift every
 * element, so such a path stands for the whole array it enters.
 */
function location(pointer: string): string[] {
  const parts = segments(pointer);
  const arrayStep = parts.findIndex((s) => s === '-' || /^(0|[1-9][0-9]*)$/.test(s));
  return arrayStep === -1 ? parts : parts.slice(0, arrayStep);
}

function overlap(a: string[], b: string[]): boolean {
  const shorter = a.length <= b.length ? a : b;
  const longer = shorter === a ? b : a;
  return shorter.every((s, i) => longer[i] === s);
}

/** The locations a patch touches; `test` operations count only for the incoming side. */
function touched(patch: readonly Operation[], withTests: boolean): string[][] {
  const result: string[][] = [];
  for (const op of patch) {
    if (op.op === 'test' && !withTests) continue;
    result.push(location(op.path));
    if (op.op === 'move' || op.op === 'copy') result.push(location(op.from));
  }
  return result;
}

/** True when `pointer` names a value that exists in `doc` (RFC 6901; `-` names none). */
function resolves(doc: unknown, pointer: string): boolean {
  let node = doc;
  for (const segment of segments(pointer)) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(segment) || Number(segment) >= node.length) return false;
      node = node[Number(segment)];
    } else if (typeof node === 'object' && node !== null && Object.hasOwn(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else {
      return false;
    }
  }
  return true;
}

/**
 * The fold of one patch: applied to a copy as a unit, or not at all when any operation fails
 * (RFC 6902 section 5). fast-json-patch does the applying; the model adds the one check it skips:
 * the `from` of a `move` or `copy` onto the root must exist (RFC 6902 4.4 and 4.5).
 */
export function applyToState(state: unknown, patch: readonly Operation[]): unknown {
  let doc = structuredClone(state);
  try {
    for (const op of structuredClone(patch) as Operation[]) {
      if ((op.op === 'move' || op.op === 'copy') && !resolves(doc, op.from)) return state;
      doc = jsonPatch.applyPatch(doc, [op], true, true, true).newDocument;
    }
    return doc;
  } catch {
    return state;
  }
}

/** The in-memory log. `now` stands for the log's clock at the time of an append. */
export class ReferenceLog {
  readonly events: LogEvent[] = [];

  head(): number {
    return this.events.length;
  }

  get(seq: number): LogEvent | undefined {
    return this.events[seq - 1];
  }

  /** Aggregates with an action linked to the effect's trigger at or before the effect. */
  affected(effect: EffectEvent): Identity[] {
    const result: Identity[] = [];
    for (const event of this.events) {
      if (event.seq >= effect.seq) break;
      if (!isAction(event) || !event.triggers.some((t) => sameIdentity(t, effect.effect.trigger))) continue;
      if (!result.some((a) => sameIdentity(a, event.action.aggregate))) result.push(event.action.aggregate);
    }
    return result;
  }

  /** True when a stored event is an action on `aggregate` or an effect that affects it. */
  touches(event: LogEvent, aggregate: Identity): boolean {
    return isAction(event) ? sameIdentity(event.action.aggregate, aggregate) : this.affected(event).some((a) => sameIdentity(a, aggregate));
  }

  conflicts(base: number, aggregate: Identity): LogEvent[] {
    return this.events.filter((e) => e.seq > base && this.touches(e, aggregate));
  }

  append(batch: readonly NewEvent[], options: AppendOptions, now: Date): AppendResult {
    const head = this.head();
    if (options.base > head) return { status: 'invalid-base', head };
    const resolved = new Set(options.resolved ?? []);
    const ours = batch.map((event, i) => toEvent(event, head + 1 + i, now));
    const conflicts: Conflict[] = [];
    for (const event of ours) {
      if (!isAction(event)) continue;
      // An action records what it ran into and got past: the seqs its author resolved, and those
      // the disjoint-paths merge let through.
      const settled = { resolved: [] as number[], merged: [] as number[] };
      for (const theirs of this.events) {
        if (theirs.seq <= options.base || !this.touches(theirs, event.action.aggregate)) continue;
        if (resolved.has(theirs.seq)) {
          settled.resolved.push(theirs.seq);
          continue;
        }
        if (options.merge === 'disjoint-paths' && isAction(theirs)) {
          const mine = touched(event.action.patch, true);
          const other = touched(theirs.action.patch, false);
          if (mine.every((a) => other.every((b) => !overlap(a, b)))) {
            settled.merged.push(theirs.seq);
            continue;
          }
        }
        conflicts.push({ ours: event, theirs });
      }
      if (settled.resolved.length > 0) event.resolved = settled.resolved;
      if (settled.merged.length > 0) event.merged = settled.merged;
    }
    if (conflicts.length > 0) {
      const conflicting = new Set(conflicts.map((c) => c.ours.seq));
      return { status: 'conflict', accepted: ours.filter((e) => !conflicting.has(e.seq)), conflicts };
    }
    if (options.dryRun !== true) this.events.push(...structuredClone(ours));
    return { status: 'ok', events: ours };
  }

  read(options: ReadOptions = {}): LogEvent[] {
    const from = options.from ?? 1;
    const replay = options.replay ?? true;
    const { aggregates, kinds } = options;
    const matches = (a: Identity) =>
      (kinds === undefined || kinds.includes(a[0])) && (aggregates === undefined || aggregates.some((b) => sameIdentity(a, b)));
    const filtered = aggregates !== undefined || kinds !== undefined;
    const selected = (e: LogEvent) => !filtered || (isAction(e) ? matches(e.action.aggregate) : this.affected(e).some(matches));
    const laterEffects = this.events.filter((e): e is EffectEvent => !isAction(e) && e.seq >= from);
    const replayed = (e: LogEvent) =>
      replay &&
      e.seq < from &&
      isAction(e) &&
      matches(e.action.aggregate) &&
      laterEffects.some((effect) => this.affected(effect).some((a) => sameIdentity(a, e.action.aggregate)));
    return this.events.filter((e) => (e.seq >= from && selected(e)) || replayed(e));
  }

  state(aggregate: Identity): { state: unknown; head: number } {
    let state: unknown = {};
    for (const event of this.events) {
      if (isAction(event) && sameIdentity(event.action.aggregate, aggregate)) state = applyToState(state, event.action.patch);
    }
    return { state, head: this.head() };
  }
}

function toEvent(event: NewEvent, seq: number, now: Date): LogEvent {
  const copy = structuredClone(event);
  const timestamp = copy.timestamp ?? now;
  if ('effect' in copy) return { seq, timestamp, source: copy.source, effect: { reason: copy.effect.reason, trigger: copy.effect.trigger } };
  const { reason, actor, aggregate, patch } = copy.action;
  return { seq, timestamp, source: copy.source, action: { reason, actor, aggregate, patch }, triggers: copy.triggers ?? [] };
}
