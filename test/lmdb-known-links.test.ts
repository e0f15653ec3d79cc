/**
 * The LMDB engine links each trigger to each aggregate once, at the first action that names the
 * pair, and a connection remembers the links it has seen committed so that later actions of the
 * pair look nothing up. Remembering must never leave a pair unlinked: not for a new trigger of a
 * known aggregate, not for a pair another connection linked, not beyond the memo's bound.
 */
import { open, type Key } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { openLog, type Identity } from '../src/index.ts';
import { KnownLinks } from '../src/storage/lmdb/known-links.ts';
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

  it('are remembered up to a bound, then from empty again, and never for a pair not committed', () => {
    const known = new KnownLinks(3);
    expect(known.has(t1, a)).toBe(false);
    known.committed([t1, a, t1, b, t2, a]);
    expect([known.has(t1, a), known.has(t1, b), known.has(t2, a), known.has(t2, b), known.has(t1, c)]).toEqual([true, true, true, false, false]);
    known.committed([t1, a]); // held already: nothing changes
    known.committed([t1, c]); // full: it starts again with this one
    expect([known.has(t1, a), known.has(t1, b), known.has(t2, a), known.has(t1, c)]).toEqual([false, false, false, true]);
  });

  it('tell a number id from the same digits as a string, and hold copies of the identities given', () => {
    const known = new KnownLinks();
    const trigger: [string, string] = ['consent', 'c1'];
    const aggregate: [string, number] = ['book', 7];
    known.committed([trigger, aggregate]);
    expect([known.has(t1, ['book', 7]), known.has(t1, ['book', '7'])]).toEqual([true, false]);
    trigger[1] = 'c2'; // an event handed to the caller shares its arrays with what was written
    expect([known.has(t1, ['book', 7]), known.has(t2, ['book', 7])]).toEqual([true, false]);
  });

  it('are not held for identities with long parts', () => {
    const known = new KnownLinks();
    const long: Identity = ['book', 'x'.repeat(65)];
    known.committed([t1, long, ['consent', 'y'.repeat(65)], a]);
    expect([known.has(t1, long), known.has(['consent', 'y'.repeat(65)], a)]).toEqual([false, false]);
  });
});
