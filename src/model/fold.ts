/**
 * The JSON Patch fold that turns an aggregate's actions into its state.
 */
import jsonPatch from 'fast-json-patch';
import type { Operation } from './types.ts';
import { isArrayIndex, parsePointer } from './json-pointer.ts';

type Container = Record<string, unknown> | unknown[];

/** Paths of stored patches repeat endlessly in a fold: each is parsed once (the first 10,000). */
const PARSED_PATHS = new Map<string, readonly string[] | string>();
const MAX_PARSED_PATHS = 10_000;

/** `parsePointer` of a path, remembered. The segments must not be changed by the caller. */
function segmentsOf(pointer: string): readonly string[] | string {
  let parsed = PARSED_PATHS.get(pointer);
  if (parsed === undefined) {
    parsed = parsePointer(pointer);
    if (PARSED_PATHS.size < MAX_PARSED_PATHS) PARSED_PATHS.set(pointer, parsed);
  }
  return parsed;
}

const DIGITS = /^[0-9]*$/;

/** Whether `segments` name a value in `doc` (RFC 6901: own members, array indexes in range). */
function resolves(doc: unknown, segments: readonly string[]): boolean {
  let node = doc;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      if (!isArrayIndex(segment) || Number(segment) >= node.length) return false;
      node = node[Number(segment)];
    } else if (isContainer(node) && Object.hasOwn(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else {
      return false;
    }
  }
  return true;
}

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

function shallowCopy(value: Container): Container {
  return Array.isArray(value) ? value.slice() : { ...value };
}

/**
 * Copies, below `root`, every container a write at `segments` would change (all but the last
 * segment), so the write lands on copies and the previous state stays as it was. `copied` holds
 * the containers that are copies already (`root` is); it is made at the first copy.
 */
function copyPath(root: Container, segments: readonly string[], patched: { copied: Set<unknown> | undefined }): void {
  let node: Container = root;
  for (let i = 0; i < segments.length - 1; i++) {
    let key: string | number = segments[i] as string;
    if (Array.isArray(node)) {
      // As fast-json-patch reads an index: digits only (leading zeros too), truncated to 32 bits.
      if (!DIGITS.test(key)) return;
      key = ~~key;
    }
    const child = (node as Record<string | number, unknown>)[key];
    if (!isContainer(child)) return;
    let copy: Container = child;
    if (!(patched.copied ??= new Set([root])).has(child)) {
      copy = shallowCopy(child);
      patched.copied.add(copy);
      (node as Record<string | number, unknown>)[key] = copy;
    }
    node = copy;
  }
}

/**
 * The container a written path ends in, reached through plain-object members only (an array on
 * the way is left to fast-json-patch): where the direct writes below write. Undefined for the
 * root or when the walk cannot go on; what it returns may be no container at all (a missing parent).
 */
function memberParent(root: Container, path: readonly string[]): unknown {
  if (path.length === 0) return undefined;
  let parent: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (!isContainer(parent) || Array.isArray(parent)) return undefined;
    parent = (parent as Record<string, unknown>)[path[i] as string];
  }
  return parent;
}

/**
 * The common case done directly: `add`, or `replace` of an existing member, of member `key` of
 * `parent` (from memberParent, already copied by copyPath) when it is a plain object. Returns
 * false to leave anything else (arrays, the root, a missing parent or member) to fast-json-patch,
 * which is ten times slower.
 */
function setMember(parent: unknown, key: string, value: unknown, mustExist: boolean): boolean {
  if (!isContainer(parent) || Array.isArray(parent) || Object.getPrototypeOf(parent) !== Object.prototype) return false;
  if (mustExist && !Object.hasOwn(parent, key)) return false;
  (parent as Record<string, unknown>)[key] = value;
  return true;
}

/**
 * The other common case done directly: `add` at the end of an array (`/-`, RFC 6902 4.1), the
 * array being `parent` (from memberParent, already copied by copyPath). Returns false to leave
 * anything else to fast-json-patch.
 */
function appendToArray(parent: unknown, key: string, value: unknown): boolean {
  if (key !== '-' || !Array.isArray(parent)) return false;
  parent.push(value);
  return true;
}

/**
 * Whether fast-json-patch surely refuses `op` at `path` in `doc` because the path does not
 * resolve: a value on the way to the target is missing (any operation but move and copy) or the
 * target itself is (replace, remove, test: a test of a missing value never holds). It reads as
 * fast-json-patch's own check does, `node[segment]`, and gives up (false) at an array, where
 * fast-json-patch reads indexes its own way. Refusing here spares building its error, which
 * serializes the whole document.
 */
function unresolvable(doc: unknown, path: readonly string[], op: Operation['op']): boolean {
  const end = op === 'add' ? path.length - 1 : path.length;
  let node = doc;
  for (let i = 0; i < end; i++) {
    if (node === null || node === undefined) return true;
    if (Array.isArray(node)) return false;
    node = (node as Record<string, unknown>)[path[i] as string];
    if (node === undefined) return true;
  }
  return false;
}

/**
 * Applies a patch as one unit, as RFC 6902 section 5 asks: if any operation fails (a `test`
 * that does not hold, a path that cannot be resolved), the state is returned unchanged.
 * `state` itself is never mutated: the containers along each written path are copied first
 * (structural sharing), so the cost is the depth of the paths, not the size of the state.
 * Values are shared with `patch`, which the fold never changes; the caller owns the patch and
 * must not mutate it afterwards.
 *
 * @example
 * applyPatchAtomic({}, [{ op: 'add', path: '/title', value: 'Neuromancer' }]) // { title: 'Neuromancer' }
 */
export function applyPatchAtomic(state: unknown, patch: readonly Operation[]): unknown {
  let doc: unknown = isContainer(state) ? shallowCopy(state) : state;
  // Writes at the top level of the document, the most common, copy nothing below it.
  const patched: { copied: Set<unknown> | undefined } = { copied: undefined };
  try {
    for (const op of patch) {
      if (isContainer(doc)) {
        const path = segmentsOf(op.path);
        if (typeof path !== 'string') {
          copyPath(doc, path, patched);
          if (op.op === 'add' || op.op === 'replace') {
            const parent = memberParent(doc, path);
            const key = path[path.length - 1] as string;
            if (setMember(parent, key, op.value, op.op === 'replace')) continue;
            if (op.op === 'add' && appendToArray(parent, key, op.value)) continue;
          }
          if (op.op !== 'move' && op.op !== 'copy' && unresolvable(doc, path, op.op)) return state;
        }
        if (op.op === 'move') {
          const from = segmentsOf(op.from);
          if (typeof from !== 'string') copyPath(doc, from, patched);
        }
      }
      // RFC 6902 4.4/4.5: the `from` location must exist, as an own member or an index in range.
      // fast-json-patch does not check it for a move or copy onto the root (the whole state would
      // become undefined), and elsewhere takes inherited members (a function in the state).
      if (op.op === 'move' || op.op === 'copy') {
        const from = segmentsOf(op.from);
        if (typeof from === 'string' || !resolves(doc, from)) return state;
      }
      // validate=true makes fast-json-patch refuse unresolvable paths and out-of-range indexes
      // instead of writing them; banPrototypeModifications stays on as a second line of defence.
      doc = jsonPatch.applyOperation(doc, op, true, true, true).newDocument;
      if (op.path === '' && isContainer(doc)) {
        // A new root is a value of the patch (or a part of the state): copied like the first,
        // so the operations after it write on copies.
        doc = shallowCopy(doc);
        patched.copied = undefined;
      }
    }
    return doc;
  } catch {
    return state;
  }
}
