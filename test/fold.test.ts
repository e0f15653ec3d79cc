/**
 * The fold's shortcuts (members set directly, patches whose path does not resolve refused without
 * fast-json-patch) against the reference fold, fast-json-patch applying each patch as a unit to
 * a deep copy: the same state for every patch, on documents that hold objects, arrays, strings
 * and nulls, and paths that resolve, stop at a missing member, or run into a value that is not
 * a container.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Operation } from '../src/index.ts';
import { applyPatchAtomic } from '../src/model/fold.ts';
import { applyToState } from './support/reference-model.ts';

const leaf = fc.oneof(fc.constantFrom(null, 0, 1, '', 'ab', true), fc.constant(null).map((): unknown[] => []));
const document = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, tie('object'), tie('array')),
  object: fc.dictionary(fc.constantFrom('a', 'b', 'length', '0', '01'), tie('node'), { maxKeys: 3 }),
  array: fc.array(tie('node'), { maxLength: 3 }),
}))
  // States are JSON as the store gives them back: plain objects (fast-check makes null-prototype ones too).
  .object.map((state) => JSON.parse(JSON.stringify(state)) as Record<string, unknown>);

const segment = fc.constantFrom('a', 'b', 'length', 'toString', '0', '1', '01', '-', 'x');
const pointer = fc.array(segment, { maxLength: 4 }).map((segments) => segments.map((s) => `/${s}`).join(''));
const value = fc.oneof(leaf, fc.record({ a: fc.integer({ min: 0, max: 2 }) }));
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constantFrom('add', 'replace', 'test'), path: pointer, value }) as fc.Arbitrary<Operation>,
  fc.record({ op: fc.constant('remove'), path: pointer.filter((p) => p !== '') }) as fc.Arbitrary<Operation>,
  fc
    .record({ op: fc.constantFrom('move', 'copy'), path: pointer, from: pointer })
    // What append refuses (RFC 6902 4.4): a move into a location inside the one it moves.
    .filter(({ op, path, from }) => op === 'copy' || path === from || !`${path}/`.startsWith(`${from}/`)) as fc.Arbitrary<Operation>,
);

describe('the JSON Patch fold', () => {
  it('gives the state fast-json-patch gives applying the patch as a unit, and leaves the previous state and the patch as they were', () => {
    fc.assert(
      // Patches as append stores them: plain JSON, like the states.
      fc.property(document, fc.array(operation, { minLength: 1, maxLength: 3 }).map((patch) => JSON.parse(JSON.stringify(patch)) as Operation[]), (state, patch) => {
        const [before, patchBefore] = structuredClone([state, patch]);
        expect(applyPatchAtomic(state, patch)).toEqual(applyToState(state, patch));
        expect(state).toEqual(before);
        expect(patch).toEqual(patchBefore);
      }),
      { numRuns: 3000 },
    );
  });
});
