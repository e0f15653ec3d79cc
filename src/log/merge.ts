/**
 * The `merge: 'disjoint-paths'` rule: two actions on one aggregate that touch no common location
 * can both stand, whatever their order.
 */
import { conflictLocation, locationsOverlap, parsePointer } from '../model/json-pointer.ts';
import type { Operation } from '../model/types.ts';

function location(pointer: string): readonly string[] {
  const segments = parsePointer(pointer);
  // Stored pointers were validated on the way in; anything else overlaps everything.
  return typeof segments === 'string' ? [] : conflictLocation(segments);
}

/**
 * The locations a patch touches: every written path, the `from` of `move` and `copy`, and, for
 * the incoming side only, the paths its `test` operations read.
 */
function touched(patch: readonly Operation[], includeTests: boolean): (readonly string[])[] {
  const locations: (readonly string[])[] = [];
  for (const op of patch) {
    if (op.op === 'test' && !includeTests) continue;
    locations.push(location(op.path));
    if (op.op === 'move' || op.op === 'copy') locations.push(location(op.from));
  }
  return locations;
}

/** True when `ours` can be applied after `theirs` without either touching what the other did. */
export function patchesAreDisjoint(ours: readonly Operation[], theirs: readonly Operation[]): boolean {
  const theirLocations = touched(theirs, false);
  return touched(ours, true).every((a) => theirLocations.every((b) => !locationsOverlap(a, b)));
}
