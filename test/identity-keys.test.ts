/**
 * Identities are compared in memory by their identity keys, and the keys of a value sealed under
 * several keys are stored sorted by them (the order is bound into the value's associated data),
 * so that order must stay what earlier versions wrote, and no two identities may share a key.
 */
import { describe, expect, it } from 'vitest';
import { actionKeys } from '../src/crypto/seal-batch.ts';
import type { Identity } from '../src/index.ts';
import { identityKey } from '../src/model/validate.ts';

const mixed: Identity[] = [
  ['b', 1], ['a', 'x'], ['a', 2], ['a', '-1'], ['ab', 'a'], ['a', 10], ['a', 9], ['a', '10'], ['a', -3], ['a\u0001', 'z'], ['a', 'x\u0001y'], ['ü', 0],
];

describe('identity keys', () => {
  it('sort the keys of a value sealed under several keys as 0.2.0 stored them', () => {
    // The order earlier versions wrote (their form: kind, NUL, typeof id, NUL, id).
    expect(actionKeys(mixed)).toEqual([
      ['a', -3], ['a', 10], ['a', 2], ['a', 9], ['a', '-1'], ['a', '10'], ['a', 'x'], ['a', 'x\u0001y'], ['a\u0001', 'z'], ['ab', 'a'], ['b', 1], ['ü', 0],
    ]);
  });

  it('differ for every two different identities, a number id and the same digits as a string included', () => {
    const keys = mixed.map(identityKey);
    expect(new Set(keys).size).toBe(mixed.length);
    expect(identityKey(['a', 7])).not.toBe(identityKey(['a', '7']));
    expect(identityKey(['a', 'b'])).toBe(identityKey(['a', 'b']));
    // No key holds three NULs in a row, so lists of them joined by three NULs cannot meet.
    for (const key of keys) expect(key.includes('\u0000\u0000\u0000')).toBe(false);
  });
});
