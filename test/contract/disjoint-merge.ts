import { describe, expect, it } from 'vitest';
import type { AppendOptions, AppendResult, Identity, Log, Operation } from '../../src/index.ts';
import { action, allEvents, effect } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const book: Identity = ['book', 'Neuromancer'];
const alice: Identity = ['user', 'alice'];
const bob: Identity = ['user', 'bob'];
const carol: Identity = ['user', 'carol'];

const initial = {
  title: 'Neuromancer',
  stock: 3,
  price: 9.99,
  a: { b: 1, c: 2 },
  ab: 1,
  'a/b': 1,
  items: [{ name: 'hardcover' }, { name: 'paperback' }, { name: 'audio' }, { name: 'ebook' }],
  tags: ['cyberpunk'],
};

/**
 * seq 1 creates the book; everyone's view is based on 1. seq 2 is `theirs` (by Carol); then
 * Bob appends `ours` based on 1 with the given merge mode.
 */
async function race(engine: TestEngine, ours: Operation[], theirs: Operation[], options: Partial<AppendOptions> = { merge: 'disjoint-paths' }) {
  const { log } = await engine.tempLog({ clock });
  await log.append([action(book, [{ op: 'add', path: '', value: initial }], { actor: alice })], { base: 0 });
  const stored = await log.append([action(book, theirs, { actor: carol })], { base: 1 });
  expect(stored.status).toBe('ok');
  const before = await allEvents(log);
  const result = await log.append([action(book, ours, { actor: bob })], { base: 1, ...options });
  return { log, result, before };
}

async function expectConflict(log: Log, result: AppendResult, before: unknown) {
  expect(result.status).toBe('conflict');
  if (result.status !== 'conflict') return;
  expect(result.conflicts.map((c) => [c.ours.seq, c.theirs.seq])).toEqual([[3, 2]]);
  expect(result.conflicts[0]?.theirs).toEqual(await log.get(2));
  expect(await log.head()).toBe(2);
  expect(await allEvents(log)).toEqual(before);
}

async function expectMerged(log: Log, result: AppendResult) {
  expect(result.status).toBe('ok');
  if (result.status !== 'ok') return;
  expect(result.events.map((e) => e.seq)).toEqual([3]);
  expect(await log.get(3)).toEqual(result.events[0]);
  expect(await log.head()).toBe(3);
}

export function disjointMerge(engine: TestEngine): void {
  describe("merge: 'disjoint-paths'", () => {
    it('writes an action whose paths are disjoint from the conflicting action', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'replace', path: '/price', value: 12 }, { op: 'add', path: '/subtitle', value: 'Sprawl #1' }],
        [{ op: 'replace', path: '/stock', value: 2 }],
      );
      await expectMerged(log, result);
      const { state, head } = await log.state(book);
      expect(head).toBe(3);
      expect(state).toMatchObject({ stock: 2, price: 12, subtitle: 'Sprawl #1' });
    });

    it('records on the action the seqs the merge let it through and those its author resolved, and nothing else', async () => {
      const { log } = await engine.tempLog({ clock });
      await log.append([action(book, [{ op: 'add', path: '', value: initial }], { actor: alice })], { base: 0 });
      await log.append([action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })], { base: 1 }); // 2: disjoint
      await log.append([action(book, [{ op: 'replace', path: '/price', value: 8 }], { actor: carol })], { base: 2 }); // 3: same path
      await log.append([action(['book', 'other'], [{ op: 'add', path: '/x', value: 1 }], { actor: carol })], { base: 3 }); // 4: elsewhere
      const result = await log.append([action(book, [{ op: 'replace', path: '/price', value: 12 }], { actor: bob })], { base: 1, resolved: [3, 4], merge: 'disjoint-paths' });
      expect(result.status).toBe('ok');
      const [event] = result.status === 'ok' ? result.events : [];
      expect(event).toMatchObject({ seq: 5, merged: [2], resolved: [3] });
      expect(await log.get(5)).toEqual(event);
      // An action that ran into nothing records neither.
      const plain = await log.append([action(book, [{ op: 'replace', path: '/stock', value: 1 }])], { base: 5 });
      expect(plain.status === 'ok' && plain.events[0]).not.toHaveProperty('resolved');
      expect(plain.status === 'ok' && plain.events[0]).not.toHaveProperty('merged');
      expect(await log.verify()).toEqual({ ok: true, events: 6 });
    });

    it('reports a conflict when both actions write the same path', async () => {
      const { log, result, before } = await race(
        engine,
        [{ op: 'replace', path: '/stock', value: 5 }],
        [{ op: 'replace', path: '/stock', value: 2 }],
      );
      await expectConflict(log, result, before);
    });

    it.each([
      ['ours writes /a, theirs /a/b', '/a', '/a/b'],
      ['ours writes /a/b, theirs /a', '/a/b', '/a'],
      ['ours replaces the whole document, theirs /stock', '', '/stock'],
      ['ours writes /stock, theirs replaces the whole document', '/stock', ''],
    ])('reports a conflict when one path is a prefix of the other (%s)', async (_, ours, theirs) => {
      const { log, result, before } = await race(
        engine,
        [{ op: 'add', path: ours, value: { b: 5 } }],
        [{ op: 'add', path: theirs, value: { b: 6 } }],
      );
      await expectConflict(log, result, before);
    });

    it('tells a path prefix from a mere string prefix', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'replace', path: '/ab', value: 2 }],
        [{ op: 'replace', path: '/a', value: 2 }],
      );
      await expectMerged(log, result);
    });

    it('compares unescaped segments, so /a~1b is not under /a', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'replace', path: '/a~1b', value: 2 }],
        [{ op: 'replace', path: '/a/b', value: 2 }],
      );
      await expectMerged(log, result);
      expect((await log.state(book)).state).toMatchObject({ 'a/b': 2, a: { b: 2, c: 2 } });
    });

    it.each([
      ['/items/0 against /items/3', { op: 'replace', path: '/items/0/name', value: 'x' }, { op: 'replace', path: '/items/3/name', value: 'y' }],
      ['/items/3 against /items/0', { op: 'remove', path: '/items/3' }, { op: 'remove', path: '/items/0' }],
      ['/items/- against /items/1/name', { op: 'add', path: '/items/-', value: { name: 'x' } }, { op: 'replace', path: '/items/1/name', value: 'y' }],
      ['/items/1/name against /items/-', { op: 'replace', path: '/items/1/name', value: 'y' }, { op: 'add', path: '/items/-', value: { name: 'x' } }],
      ['/items/- against /items/-', { op: 'add', path: '/items/-', value: { name: 'x' } }, { op: 'add', path: '/items/-', value: { name: 'y' } }],
    ] as [string, Operation, Operation][])('reports a conflict for two paths into the same array (%s)', async (_, ours, theirs) => {
      const { log, result, before } = await race(engine, [ours], [theirs]);
      await expectConflict(log, result, before);
    });

    it('merges paths into different arrays', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'add', path: '/tags/-', value: 'classic' }],
        [{ op: 'remove', path: '/items/0' }],
      );
      await expectMerged(log, result);
      expect((await log.state(book)).state).toMatchObject({ tags: ['cyberpunk', 'classic'], items: [{ name: 'paperback' }, { name: 'audio' }, { name: 'ebook' }] });
    });

    it.each([
      ['ours moves from /a to /moved, theirs writes /a', [{ op: 'move', from: '/a', path: '/moved' }], [{ op: 'replace', path: '/a', value: 1 }]],
      ['ours copies from /a/b to /copied, theirs writes /a', [{ op: 'copy', from: '/a/b', path: '/copied' }], [{ op: 'replace', path: '/a', value: { b: 7 } }]],
      ['ours writes /a, theirs moves from /a to /moved', [{ op: 'replace', path: '/a', value: 1 }], [{ op: 'move', from: '/a', path: '/moved' }]],
      ['ours writes /a/c, theirs copies from /a to /copied', [{ op: 'replace', path: '/a/c', value: 7 }], [{ op: 'copy', from: '/a', path: '/copied' }]],
    ] as [string, Operation[], Operation[]][])('counts the from of move and copy as touched (%s)', async (_, ours, theirs) => {
      const { log, result, before } = await race(engine, ours, theirs);
      await expectConflict(log, result, before);
    });

    it('merges a move whose from and path are both away from the other action', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'move', from: '/title', path: '/name' }],
        [{ op: 'replace', path: '/stock', value: 2 }],
      );
      await expectMerged(log, result);
    });

    it('counts a test in ours as a read of its path', async () => {
      const { log, result, before } = await race(
        engine,
        [{ op: 'test', path: '/stock', value: 3 }, { op: 'replace', path: '/price', value: 12 }],
        [{ op: 'replace', path: '/stock', value: 2 }],
      );
      await expectConflict(log, result, before);
    });

    it('merges when the test in ours reads a path theirs did not touch', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'test', path: '/title', value: 'Neuromancer' }, { op: 'replace', path: '/price', value: 12 }],
        [{ op: 'replace', path: '/stock', value: 2 }],
      );
      await expectMerged(log, result);
    });

    it('does not count a test in theirs, which only read before ours', async () => {
      const { log, result } = await race(
        engine,
        [{ op: 'replace', path: '/price', value: 12 }],
        [{ op: 'test', path: '/price', value: 9.99 }, { op: 'replace', path: '/stock', value: 2 }],
      );
      await expectMerged(log, result);
    });

    it('reports only the conflicts it cannot merge, with the other events accepted', async () => {
      const { log } = await engine.tempLog({ clock });
      const other: Identity = ['book', 'Count Zero'];
      await log.append([action(book, [{ op: 'add', path: '', value: initial }]), action(other, [{ op: 'add', path: '/stock', value: 1 }])], { base: 0 });
      await log.append([action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })], { base: 2 }); // 3
      await log.append([action(book, [{ op: 'replace', path: '/price', value: 8 }], { actor: carol })], { base: 3 }); // 4
      await log.append([action(other, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })], { base: 4 }); // 5
      const before = await allEvents(log);
      const result = await log.append([
        action(book, [{ op: 'replace', path: '/title', value: 'NEUROMANCER' }], { actor: bob }), // 6: disjoint from 3 and 4
        action(book, [{ op: 'replace', path: '/price', value: 12 }], { actor: bob }), // 7: disjoint from 3, not from 4
        action(other, [{ op: 'add', path: '/price', value: 1 }], { actor: bob }), // 8: disjoint from 5
      ], { base: 2, merge: 'disjoint-paths' });
      expect(result.status).toBe('conflict');
      if (result.status !== 'conflict') return;
      expect(result.conflicts.map((c) => [c.ours.seq, c.theirs.seq])).toEqual([[7, 4]]);
      expect(result.accepted.map((e) => e.seq)).toEqual([6, 8]);
      expect(await allEvents(log)).toEqual(before);
    });

    it('never merges a conflict with an effect', async () => {
      const { log } = await engine.tempLog({ clock });
      const key: Identity = ['key', 'alice'];
      await log.append([action(book, [{ op: 'add', path: '/owner', value: 'alice' }], { triggers: [key] })], { base: 0 });
      await log.append([effect(key)], { base: 1 });
      const result = await log.append([action(book, [{ op: 'add', path: '/price', value: 12 }], { actor: bob })], { base: 1, merge: 'disjoint-paths' });
      expect(result.status).toBe('conflict');
      if (result.status !== 'conflict') return;
      expect(result.conflicts.map((c) => c.theirs)).toEqual([await log.get(2)]);
      expect(await log.head()).toBe(2);
    });

    it("reports disjoint changes as conflicts under the default 'none'", async () => {
      const ours: Operation[] = [{ op: 'replace', path: '/price', value: 12 }];
      const theirs: Operation[] = [{ op: 'replace', path: '/stock', value: 2 }];
      const byDefault = await race(engine, ours, theirs, {});
      await expectConflict(byDefault.log, byDefault.result, byDefault.before);
      const explicit = await race(engine, ours, theirs, { merge: 'none' });
      await expectConflict(explicit.log, explicit.result, explicit.before);
    });

    it('returns from a merging dry run exactly what the merging append returns', async () => {
      const { log } = await engine.tempLog({ clock });
      await log.append([action(book, [{ op: 'add', path: '', value: initial }])], { base: 0 });
      await log.append([action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })], { base: 1 });
      const batch = [action(book, [{ op: 'replace', path: '/price', value: 12 }], { actor: bob })];
      const dry = await log.append(batch, { base: 1, merge: 'disjoint-paths', dryRun: true });
      expect(await log.head()).toBe(2);
      const real = await log.append(batch, { base: 1, merge: 'disjoint-paths' });
      expect(real).toEqual(dry);
      expect(real.status).toBe('ok');
      expect(await log.head()).toBe(3);
    });
  });
}
