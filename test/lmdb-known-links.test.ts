/**
 * The LMDB engine links each trigger to each aggregate once, at the first action that names the
 * pair, and a connection remembers the links it has seen committed so that later actions of the
 * pair look nothing up. Remembering must never leave a pair unlinked: not for a new trigger of a
 * known aggregate, not for a pair another connection linked, not beyond the memo's bound.
 */
import { open, type Key } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { openLog, type Identity } from '../src/index.ts';
import { KnownLinks, linkId } from '../src/storage/lmdb/known-links.ts';
import { action, tempLog } from './support/temp-log.ts';

const a: Identity = ['book', 'a'];
const b: Identity = ['book', 'b'];
const c: Identity = ['book', 7];
const t1: Identity = ['consent', 'c1'];
const t2: Identity = ['consent', 'c2'];

function touch(aggregate: Identity, triggers: Identity[], value: number) {
  return action(aggregate, [{ op: 'add', path: '/v', value }], { triggers });
}

/** Every trigger link of the closed store at `path`, as `trigger → aggregate @ seq` lines, in key order. */
async function storedLinks(path: string): Promise<string[]> {
  const root = open({ path, maxDbs: 16 });
  const links = root.openDB<Buffer, Key>({ name: 'trigger-links', encoding: 'binary' });
  const lines: string[] = [];
  for (const { key, value } of links.getRange()) {
    const [kind, id, aggregateKind, aggregateId] = key as [string, string, string, string | number];
    lines.push(`${kind}/${id} → ${aggregateKind}/${String(aggregateId)} @ ${value.readDoubleBE(0)}`);
  }
  await root.close();
  return lines;
}

describe('trigger links', () => {
  it('link every pair once, at its first action, while connections remember the links they have seen', async () => {
    const { log: first, path } = await tempLog();
    const second = await openLog({ path });
    let head = 0;
    const append = async (log: typeof first, ...events: ReturnType<typeof touch>[]) => {
      const result = await log.append(events, { base: head });
      expect(result.status).toBe('ok');
      head += events.length;
    };
    await append(first, touch(a, [t1], 1), touch(b, [t1], 2)); // 1, 2: new pairs
    await append(first, touch(a, [t1], 3)); // 3: known to this connection
    await append(first, touch(a, [t1, t2], 4)); // 4: a new trigger of a known aggregate
    await append(second, touch(a, [t2], 5), touch(c, [t2], 6)); // 5: linked by the other connection; 6: new
    await append(first, touch(c, [t2], 7), touch(c, [t1], 8)); // 7: linked by the other connection; 8: new
    // Two writes in one turn share a transaction: the second sees the first's new link.
    const [x, y] = await Promise.all([first.append([touch(b, [t2], 9)], { base: 8 }), first.append([touch(b, [t2], 10)], { base: 9 })]);
    expect([x.status, y.status]).toEqual(['ok', 'ok']);
    head = 10;
    await append(first, touch(b, [t2], 11));
    expect(await first.verify()).toEqual({ ok: true, events: 11 });
    await second.close();
    await first.close();
    expect(await storedLinks(path)).toEqual([
      'consent/c1 → book/7 @ 8',
      'consent/c1 → book/a @ 1',
      'consent/c1 → book/b @ 2',
      'consent/c2 → book/7 @ 6',
      'consent/c2 → book/a @ 4',
      'consent/c2 → book/b @ 9',
    ]);
  });

  it('are remembered within a bound: links in use stay, the rest are forgotten', () => {
    const known = new KnownLinks(2);
    const [p, q, r, s] = [a, b, c, ['book', 'd'] as Identity].map((aggregate) => linkId(t1, aggregate)) as [string, string, string, string];
    expect(known.has(p)).toBe(false);
    known.committed([p, q]);
    known.committed([r]); // the newer generation was full: p and q are the older one now
    expect(known.has(p)).toBe(true); // and p moves back to the newer, beside r
    known.committed([s]); // full again: q is dropped with the older generation
    expect([known.has(p), known.has(q), known.has(r), known.has(s)]).toEqual([true, false, true, true]);
  });

  it('tell a number id from the same digits as a string, and one trigger from another', () => {
    expect(linkId(t1, ['book', 7])).not.toBe(linkId(t1, ['book', '7']));
    expect(linkId(t1, a)).not.toBe(linkId(t2, a));
    expect(linkId(['consent', 'c1'], ['book', 'a'])).not.toBe(linkId(['consent', 'c1\u0001book'], ['a', 'x']));
  });
});
