/**
 * The JSON Pointer rules of a patch's `path` and `from` (RFC 6901, plus no segment that could
 * reach a prototype), checked against a reference written from the RFC: append refuses exactly
 * the pointers the rules refuse, with the reason the rules give, and stores the others.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidEventError, memoryEngine, openLog, type Log, type Operation } from '../src/index.ts';
import { parsePointer, pointerWithin } from '../src/model/json-pointer.ts';
import { action } from './support/temp-log.ts';

/** RFC 6901 §3-4, and the prototype rule: the unescaped segments, or undefined for a bad pointer. */
function referenceSegments(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const segments: string[] = [];
  for (const escaped of pointer.slice(1).split('/')) {
    // "~" must start "~0" or "~1"; "~1" is unescaped first, so "~01" is "~1", not "/".
    for (let i = 0; i < escaped.length; i++) if (escaped[i] === '~' && escaped[i + 1] !== '0' && escaped[i + 1] !== '1') return undefined;
    const segment = escaped.replaceAll('~1', '/').replaceAll('~0', '~');
    if (segment === '__proto__' || segment === 'constructor' || segment === 'prototype') return undefined;
    segments.push(segment);
  }
  return segments;
}

/** Pointers built from the pieces the rules are about: slashes, tildes, escapes, prototype names. */
const pointers = fc
  .array(fc.constantFrom('/', '~', '~0', '~1', '0', '1', 'a', '__proto__', 'constructor', 'prototype', '_', '-', 'é'), { maxLength: 8 })
  .map((pieces) => pieces.join(''));

const at = (log: Log, op: Operation, base: number) => log.append([action(['doc', 1], [op])], { base });

describe('JSON Pointers in a patch', () => {
  it('are refused by append exactly when RFC 6901 or the prototype rule refuses them, as path and as from', async () => {
    const log = await openLog({ engine: memoryEngine() });
    try {
      await fc.assert(
        fc.asyncProperty(pointers, async (pointer) => {
          let head = await log.head();
          const before = head;
          const good = referenceSegments(pointer) !== undefined;
          expect(typeof parsePointer(pointer) !== 'string').toBe(good);
          for (const [op, member] of [[{ op: 'test', path: pointer, value: 1 }, 'path'], [{ op: 'copy', path: '/x', from: pointer }, 'from']] as const) {
            const appended = at(log, op as Operation, head);
            if (good) {
              expect((await appended).status).toBe('ok');
              head++;
            } else {
              const error: unknown = await appended.catch((e: unknown) => e);
              expect(error).toBeInstanceOf(InvalidEventError);
              expect(error).toMatchObject({ index: 0, path: `action.patch[0].${member}` });
              expect((error as Error).message).toBe(`events[0].action.patch[0].${member}: ${parsePointer(pointer) as string}`);
            }
          }
          expect(await log.head()).toBe(good ? before + 2 : before);
        }),
        { numRuns: 400 },
      );
    } finally {
      await log.close();
    }
  });

  it('says a pointer lies within another (what encrypt.paths selects) exactly when its segments start with the other\'s', () => {
    fc.assert(
      fc.property(pointers, pointers, (a, b) => {
        const [sa, sb] = [referenceSegments(a), referenceSegments(b)];
        fc.pre(sa !== undefined && sb !== undefined);
        const segmentsWithin = sb.length <= sa.length && sb.every((segment, i) => sa[i] === segment);
        expect(pointerWithin(a, b)).toBe(segmentsWithin);
        // A pointer extended by whole segments lies within it.
        if (referenceSegments(a + b) !== undefined) expect(pointerWithin(a + b, a)).toBe(true);
      }),
      { numRuns: 2000 },
    );
    expect([pointerWithin('/card/number', '/card'), pointerWithin('/cards', '/card'), pointerWithin('/card', ''), pointerWithin('', '/card'), pointerWithin('/a~1b', '/a')]).toEqual([true, false, true, false, false]);
  });
});
