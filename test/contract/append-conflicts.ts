import { describe, expect, it } from 'vitest';
import type { AppendResult, Identity, Log, LogEvent, NewEvent } from '../../src/index.ts';
import { action, allEvents, effect } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const now = new Date('2024-05-01T12:00:00.000Z');
const clock = () => now;

const book: Identity = ['book', 'Neuromancer'];
const otherBook: Identity = ['book', 'Count Zero'];
const thirdBook: Identity = ['book', 'Mona Lisa Overdrive'];
const fourthBook: Identity = ['book', 'Burning Chrome'];
const alice: Identity = ['user', 'alice'];
const bob: Identity = ['user', 'bob'];
const carol: Identity = ['user', 'carol'];
const aliceKey: Identity = ['key', 'alice'];

function ok(result: AppendResult): LogEvent[] {
  if (result.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  return result.events;
}

async function appendOk(log: Log, events: NewEvent[], base?: number): Promise<LogEvent[]> {
  return ok(await log.append(events, { base: base ?? (await log.head()) }));
}

function conflictOf(result: AppendResult): Extract<AppendResult, { status: 'conflict' }> {
  if (result.status !== 'conflict') throw new Error(`expected a conflict, got ${JSON.stringify(result)}`);
  return result;
}

/** What a batch event looks like with its (tentative) seq, for comparison with results. */
function stored(seq: number, event: NewEvent): LogEvent {
  if ('effect' in event) return { seq, timestamp: event.timestamp ?? now, source: event.source, effect: event.effect };
  return { seq, timestamp: event.timestamp ?? now, source: event.source, action: event.action, triggers: event.triggers ?? [] };
}

async function snapshot(log: Log) {
  return { head: await log.head(), events: await allEvents(log) };
}

export function appendConflicts(engine: TestEngine): void {
  describe('the bookstore walkthrough', () => {
    it('gives Bob the conflict with both sides, and takes his append once he has resolved it', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [
        { op: 'add', path: '/title', value: 'Neuromancer' },
        { op: 'add', path: '/stock', value: 3 },
      ], { actor: alice, reason: 'add the book' })], 0);

      // Alice and Bob read the book at the same head.
      const view = await log.state(book);
      expect(view).toEqual({ state: { title: 'Neuromancer', stock: 3 }, head: 1 });

      const sale = action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: alice, reason: 'sold one copy' });
      const [sold] = await appendOk(log, [sale], view.head);
      expect(sold).toEqual(stored(2, sale));

      const restock = action(book, [{ op: 'replace', path: '/stock', value: 5 }], { actor: bob, reason: 'received two copies' });
      const result = await log.append([restock], { base: view.head });
      expect(result).toEqual({
        status: 'conflict',
        accepted: [],
        conflicts: [{ ours: stored(3, restock), theirs: stored(2, sale) }],
      });
      // Theirs is the stored event, exactly as the log gives it back.
      expect(conflictOf(result).conflicts[0]?.theirs).toEqual(await log.get(2));
      expect(await log.head()).toBe(2);
      expect(await log.get(3)).toBeUndefined();

      // Appending the same thing again without resolving still conflicts.
      expect((await log.append([restock], { base: view.head })).status).toBe('conflict');

      // Bob looks at what is there now and appends again, naming what he resolved.
      const current = await log.state(book);
      expect(current.state).toEqual({ title: 'Neuromancer', stock: 2 });
      const resolvedRestock = action(book, [{ op: 'replace', path: '/stock', value: 4 }], { actor: bob, reason: 'received two copies (resolved)' });
      const retry = await log.append([resolvedRestock], {
        base: view.head,
        resolved: conflictOf(result).conflicts.map((c) => c.theirs.seq),
      });
      // The stored action says what Bob resolved, so the history shows how the conflict ended.
      const settled = { ...stored(3, resolvedRestock), resolved: [2] };
      expect(retry).toEqual({ status: 'ok', events: [settled] });
      expect(await log.state(book)).toEqual({ state: { title: 'Neuromancer', stock: 4 }, head: 3 });
      expect(await allEvents(log)).toEqual([
        expect.objectContaining({ seq: 1 }),
        stored(2, sale),
        settled,
      ]);
    });
  });

  describe('conflicts of a batch', () => {
    /**
     * seq 1-3: the three books, the first linked to alice's key. The caller's base is 3.
     * After it: 4 changes book 2, 5 shreds alice's key (affects book 1), 6 changes book 1,
     * 7 changes book 2, 8 changes book 4 (which the caller does not touch).
     */
    async function busyLog() {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] }),
        action(otherBook, [{ op: 'add', path: '/stock', value: 1 }]),
        action(thirdBook, [{ op: 'add', path: '/stock', value: 1 }]),
      ], 0);
      await appendOk(log, [action(otherBook, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })]);
      await appendOk(log, [effect(aliceKey)]);
      await appendOk(log, [action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })]);
      await appendOk(log, [action(otherBook, [{ op: 'replace', path: '/stock', value: 3 }], { actor: carol })]);
      await appendOk(log, [action(fourthBook, [{ op: 'add', path: '/stock', value: 1 }], { actor: carol })]);
      return log;
    }

    it('reports every conflict of the batch with both sides, ordered by our seq then their seq', async () => {
      const log = await busyLog();
      const ours = [
        action(otherBook, [{ op: 'replace', path: '/price', value: 10 }], { actor: bob }),
        action(thirdBook, [{ op: 'replace', path: '/price', value: 11 }], { actor: bob }),
        action(book, [{ op: 'replace', path: '/price', value: 12 }], { actor: bob }),
        action(otherBook, [{ op: 'replace', path: '/price', value: 13 }], { actor: bob }),
      ];
      const result = conflictOf(await log.append(ours, { base: 3 }));
      const pairs = result.conflicts.map((c) => [c.ours.seq, c.theirs.seq]);
      // Book 1 meets its action (6) and the effect on its key (5), in seq order.
      expect(pairs).toEqual([[9, 4], [9, 7], [11, 5], [11, 6], [12, 4], [12, 7]]);
      for (const { ours: mine, theirs } of result.conflicts) {
        expect(mine).toEqual(stored(mine.seq, ours[mine.seq - 9] as NewEvent));
        expect(theirs).toEqual(await log.get(theirs.seq));
      }
      expect(result.accepted).toEqual([stored(10, ours[1] as NewEvent)]);
    });

    it('writes nothing of a batch when one of its events conflicts', async () => {
      const log = await busyLog();
      const before = await snapshot(log);
      const result = await log.append([
        action(thirdBook, [{ op: 'replace', path: '/price', value: 11 }], { actor: bob }),
        action(book, [{ op: 'replace', path: '/price', value: 12 }], { actor: bob }),
        effect(['consent', 'bob']),
      ], { base: 3 });
      expect(result.status).toBe('conflict');
      expect(conflictOf(result).accepted.map((e) => e.seq)).toEqual([9, 11]);
      expect(await snapshot(log)).toEqual(before);
      expect(await log.get(9)).toBeUndefined();
      expect(await log.verify()).toEqual({ ok: true, events: 8 });
    });

    it('reports no conflict with what was stored at or before the base', async () => {
      const log = await busyLog();
      const events = await appendOk(log, [action(book, [{ op: 'replace', path: '/price', value: 12 }], { actor: bob })], 8);
      expect(events.map((e) => e.seq)).toEqual([9]);
    });

    it('never lets events of one batch conflict with each other', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(otherBook, [{ op: 'add', path: '/stock', value: 1 }])], 0);
      const batch = [
        action(book, [{ op: 'add', path: '/stock', value: 1 }]),
        action(book, [{ op: 'replace', path: '/stock', value: 2 }]),
        action(book, [{ op: 'replace', path: '/stock', value: 3 }], { triggers: [aliceKey] }),
        effect(aliceKey),
        action(book, [{ op: 'replace', path: '/stock', value: 4 }]),
      ];
      // Based on 0: the stored event is on another book, and the batch's own events do not count.
      const events = ok(await log.append(batch, { base: 0 }));
      expect(events).toEqual(batch.map((e, i) => stored(2 + i, e)));
      expect(await log.state(book)).toEqual({ state: { stock: 4 }, head: 6 });
    });

    it('never reports a conflict for an effect in the batch', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] })], 0);
      await appendOk(log, [action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: bob, triggers: [aliceKey] })]);
      await appendOk(log, [effect(aliceKey)]);
      // Based on 0, although actions and an effect on the same trigger came since.
      const result = await log.append([effect(aliceKey, 'key-expired')], { base: 0 });
      expect(result).toEqual({ status: 'ok', events: [stored(4, effect(aliceKey, 'key-expired'))] });
    });

    it('links an effect to the aggregates whose trigger links came earlier in the same batch', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] }),
        effect(aliceKey),
      ], 0);
      const result = conflictOf(await log.append([action(book, [{ op: 'replace', path: '/stock', value: 2 }])], { base: 1 }));
      expect(result.conflicts.map((c) => c.theirs)).toEqual([await log.get(2)]);
    });

    it('lets exactly one of several racing appends with the same base win', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 0 }])], 0);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => log.append([action(book, [{ op: 'replace', path: '/stock', value: i }])], { base: 1 })),
      );
      const winners = results.filter((r) => r.status === 'ok');
      expect(winners).toHaveLength(1);
      const winner = ok(winners[0] as AppendResult)[0] as LogEvent;
      expect(winner.seq).toBe(2);
      for (const r of results) {
        if (r.status === 'ok') continue;
        expect(conflictOf(r).conflicts.map((c) => c.theirs)).toEqual([winner]);
      }
      expect(await log.head()).toBe(2);
    });
  });

  describe('invalid base', () => {
    it('returns invalid-base with the head when the base is beyond it, and writes nothing', async () => {
      const { log } = await engine.tempLog({ clock });
      expect(await log.append([action(book, [{ op: 'add', path: '/a', value: 1 }])], { base: 1 })).toEqual({ status: 'invalid-base', head: 0 });
      await appendOk(log, [action(book, [{ op: 'add', path: '/a', value: 1 }]), action(book, [{ op: 'add', path: '/b', value: 2 }])], 0);
      const before = await snapshot(log);
      expect(await log.append([action(otherBook, [{ op: 'add', path: '/a', value: 1 }])], { base: 3 })).toEqual({ status: 'invalid-base', head: 2 });
      expect(await log.append([effect(aliceKey)], { base: 100, dryRun: true })).toEqual({ status: 'invalid-base', head: 2 });
      expect(await snapshot(log)).toEqual(before);
    });
  });

  describe('resolved', () => {
    async function threeLaterChanges() {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 0 }])], 0);
      for (const value of [1, 2, 3]) await appendOk(log, [action(book, [{ op: 'replace', path: '/stock', value }], { actor: carol })]);
      await appendOk(log, [action(otherBook, [{ op: 'add', path: '/stock', value: 0 }], { actor: carol })]);
      return log; // seq 1 base, 2-4 on the book, 5 on the other book
    }

    it('removes only the listed seqs from the conflicts', async () => {
      const log = await threeLaterChanges();
      const mine = action(book, [{ op: 'replace', path: '/stock', value: 9 }], { actor: bob });
      const partly = conflictOf(await log.append([mine], { base: 1, resolved: [3] }));
      expect(partly.conflicts.map((c) => c.theirs.seq)).toEqual([2, 4]);
      // Resolving a seq that is not in conflict changes nothing.
      const unrelated = conflictOf(await log.append([mine], { base: 1, resolved: [5] }));
      expect(unrelated.conflicts.map((c) => c.theirs.seq)).toEqual([2, 3, 4]);
      expect(await log.head()).toBe(5);
    });

    it('accepts the append once every conflicting seq is resolved', async () => {
      const log = await threeLaterChanges();
      const mine = action(book, [{ op: 'replace', path: '/stock', value: 9 }], { actor: bob });
      expect(await log.append([mine], { base: 1, resolved: [4, 2, 3] })).toEqual({ status: 'ok', events: [{ ...stored(6, mine), resolved: [2, 3, 4] }] });
      expect(await log.get(6)).toMatchObject({ resolved: [2, 3, 4] });
      expect(await log.state(book)).toEqual({ state: { stock: 9 }, head: 6 });
    });
  });

  describe('dry run', () => {
    it('returns exactly what the append returns when it would succeed, and writes nothing', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] })], 0);
      const batch = [
        action(book, [{ op: 'replace', path: '/stock', value: 2 }], { triggers: [aliceKey] }),
        effect(aliceKey),
        action(otherBook, [{ op: 'add', path: '/stock', value: 5 }], { timestamp: new Date('2020-01-01T00:00:00Z') }),
      ];
      const before = await snapshot(log);
      const dry = await log.append(batch, { base: 1, dryRun: true });
      expect(await snapshot(log)).toEqual(before);
      expect(await log.get(2)).toBeUndefined();

      const real = await log.append(batch, { base: 1 });
      expect(real).toEqual(dry);
      expect(real.status).toBe('ok');
      expect(await allEvents(log)).toEqual([...before.events, ...ok(real)]);
    });

    it('returns exactly what the append returns when it would conflict, and writes nothing', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] })], 0);
      await appendOk(log, [action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: carol })]);
      await appendOk(log, [effect(aliceKey)]);
      const batch = [
        action(otherBook, [{ op: 'add', path: '/stock', value: 5 }]),
        action(book, [{ op: 'replace', path: '/stock', value: 3 }], { actor: bob }),
      ];
      const before = await snapshot(log);
      const dry = await log.append(batch, { base: 1, dryRun: true, resolved: [2] });
      expect(await snapshot(log)).toEqual(before);
      const real = await log.append(batch, { base: 1, resolved: [2] });
      expect(real).toEqual(dry);
      expect(conflictOf(real).conflicts.map((c) => [c.ours.seq, c.theirs.seq])).toEqual([[5, 3]]);
      expect(await snapshot(log)).toEqual(before);
    });
  });

  describe('effect conflicts', () => {
    it('reports an effect after the base on a trigger linked to the aggregate as a conflict', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/owner', value: 'alice' }], { triggers: [aliceKey] })], 0);
      const [shred] = await appendOk(log, [effect(aliceKey)]);
      const mine = action(book, [{ op: 'replace', path: '/price', value: 3 }], { actor: bob });
      expect(await log.append([mine], { base: 1 })).toEqual({
        status: 'conflict',
        accepted: [],
        conflicts: [{ ours: stored(3, mine), theirs: shred }],
      });
      expect(shred).toEqual(stored(2, effect(aliceKey)));
    });

    it('links an aggregate to a trigger through an action on it, whoever the actor', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(book, [{ op: 'add', path: '/stock', value: 1 }]),
        action(book, [{ op: 'add', path: '/owner', value: 'alice' }], { actor: carol, triggers: [['consent', 'alice'], aliceKey] }),
      ], 0);
      await appendOk(log, [effect(aliceKey)]);
      const result = conflictOf(await log.append([action(book, [{ op: 'add', path: '/price', value: 3 }], { actor: bob })], { base: 2 }));
      expect(result.conflicts.map((c) => c.theirs.seq)).toEqual([3]);
    });

    it('does not report an effect whose trigger was linked to the aggregate only after the effect', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }])], 0);
      await appendOk(log, [effect(aliceKey)]); // 2: aliceKey is linked to nothing yet
      await appendOk(log, [action(book, [{ op: 'add', path: '/owner', value: 'alice' }], { actor: carol, triggers: [aliceKey] })]); // 3
      const mine = action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: bob });
      const result = conflictOf(await log.append([mine], { base: 1 }));
      expect(result.conflicts.map((c) => c.theirs.seq)).toEqual([3]);
      expect(await log.append([mine], { base: 1, resolved: [3] })).toEqual({ status: 'ok', events: [{ ...stored(4, mine), resolved: [3] }] });
    });

    it('does not report an effect on a trigger linked only to other aggregates', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [
        action(book, [{ op: 'add', path: '/stock', value: 1 }]),
        action(otherBook, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] }),
      ], 0);
      await appendOk(log, [effect(aliceKey)]);
      const mine = action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: bob });
      expect(await log.append([mine], { base: 2 })).toEqual({ status: 'ok', events: [stored(4, mine)] });
    });

    it('reports an effect to each aggregate linked to its trigger, however long their identities and however often each was linked', async () => {
      const { log } = await engine.tempLog({ clock });
      // Identity parts of up to 512 bytes of UTF-8 ('é' is two): with this trigger, the short
      // aggregate's link and the long one's are stored differently on LMDB (see its layout).
      const trigger: Identity = ['t'.repeat(300), 'é'.repeat(150)];
      const longBook: Identity = ['k'.repeat(512), 'é'.repeat(256)];
      await appendOk(log, [
        action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [trigger] }),
        action(longBook, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [trigger, aliceKey] }),
        action(book, [{ op: 'add', path: '/stock', value: 2 }], { triggers: [trigger] }),
        action(otherBook, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] }),
      ], 0);
      await appendOk(log, [action(longBook, [{ op: 'add', path: '/stock', value: 2 }], { triggers: [trigger] })]); // 5, linked again
      await appendOk(log, [effect(trigger)]); // 6
      expect((await log.conflicts(5, book)).map((e) => e.seq)).toEqual([6]);
      expect((await log.conflicts(5, longBook)).map((e) => e.seq)).toEqual([6]);
      expect(await log.conflicts(5, otherBook)).toEqual([]);
      await appendOk(log, [effect(aliceKey)]); // 7
      expect((await log.conflicts(6, longBook)).map((e) => e.seq)).toEqual([7]);
      expect((await log.conflicts(6, otherBook)).map((e) => e.seq)).toEqual([7]);
      expect(await log.conflicts(6, book)).toEqual([]);
      expect(await log.verify()).toEqual({ ok: true, events: 7 });
    });

    it('does not report an effect at or before the base', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] })], 0);
      await appendOk(log, [effect(aliceKey)]);
      const mine = action(book, [{ op: 'replace', path: '/stock', value: 2 }], { actor: bob });
      expect((await log.append([mine], { base: 2 })).status).toBe('ok');
    });
  });

  describe('log.conflicts', () => {
    it('lists the actions on the aggregate and the effects affecting it after the base, ascending', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(book, [{ op: 'add', path: '/stock', value: 1 }], { triggers: [aliceKey] })], 0); // 1
      await appendOk(log, [action(otherBook, [{ op: 'add', path: '/stock', value: 1 }])]); // 2
      await appendOk(log, [action(book, [{ op: 'replace', path: '/stock', value: 2 }])]); // 3
      await appendOk(log, [effect(aliceKey)]); // 4
      await appendOk(log, [effect(['key', 'nobody'])]); // 5
      await appendOk(log, [action(book, [{ op: 'replace', path: '/stock', value: 3 }])]); // 6

      const listed = await log.conflicts(1, book);
      expect(listed).toEqual([await log.get(3), await log.get(4), await log.get(6)]);
      expect((await log.conflicts(0, book)).map((e) => e.seq)).toEqual([1, 3, 4, 6]);
      expect((await log.conflicts(4, book)).map((e) => e.seq)).toEqual([6]);
      expect(await log.conflicts(6, book)).toEqual([]);
      expect((await log.conflicts(1, otherBook)).map((e) => e.seq)).toEqual([2]);
      expect(await log.conflicts(0, ['book', 'never written'])).toEqual([]);

      // It lists exactly what an append based there runs into.
      const result = conflictOf(await log.append([action(book, [{ op: 'add', path: '/x', value: 1 }])], { base: 1 }));
      expect(result.conflicts.map((c) => c.theirs)).toEqual(listed);
    });

    it('tells a numeric id from the same digits as a string', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOk(log, [action(['order', 7], [{ op: 'add', path: '/n', value: 1 }])], 0);
      await appendOk(log, [action(['order', '7'], [{ op: 'add', path: '/s', value: 1 }])]);
      expect((await log.conflicts(0, ['order', 7])).map((e) => e.seq)).toEqual([1]);
      expect((await log.conflicts(0, ['order', '7'])).map((e) => e.seq)).toEqual([2]);
      expect((await log.append([action(['order', 7], [{ op: 'add', path: '/m', value: 2 }])], { base: 1 })).status).toBe('ok');
    });
  });
}
