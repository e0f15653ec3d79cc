import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, LogClosedError, type Identity, type Log, type LogEvent, type NewEvent, type ReadOptions } from '../../src/index.ts';
import { action, effect } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const neuromancer: Identity = ['book', 'Neuromancer'];
const countZero: Identity = ['book', 'Count Zero'];
const gibson: Identity = ['author', 'gibson'];
const aliceKey: Identity = ['key', 'alice'];
const bobKey: Identity = ['key', 'bob'];

async function seqs(log: Log, options?: ReadOptions): Promise<number[]> {
  const out: number[] = [];
  for await (const event of log.read(options)) out.push(event.seq);
  return out;
}

async function events(log: Log, options?: ReadOptions): Promise<LogEvent[]> {
  const out: LogEvent[] = [];
  for await (const event of log.read(options)) out.push(event);
  return out;
}

async function appendOne(log: Log, event: NewEvent): Promise<void> {
  const result = await log.append([event], { base: await log.head() });
  if (result.status !== 'ok') throw new Error(`expected ok, got ${result.status}`);
}

/**
 *  1 Neuromancer, linked to alice's key     5 Count Zero
 *  2 Count Zero                              6 effect: alice's key (affects Neuromancer)
 *  3 gibson, linked to bob's key             7 gibson
 *  4 Neuromancer                             8 effect: a key linked to nothing
 *                                            9 effect: bob's key (affects gibson)
 */
async function shop(engine: TestEngine): Promise<Log> {
  const { log } = await engine.tempLog({ clock });
  await appendOne(log, action(neuromancer, [{ op: 'add', path: '/owner', value: 'alice' }], { triggers: [aliceKey] }));
  await appendOne(log, action(countZero, [{ op: 'add', path: '/stock', value: 1 }]));
  await appendOne(log, action(gibson, [{ op: 'add', path: '/email', value: 'bob@example.com' }], { triggers: [bobKey] }));
  await appendOne(log, action(neuromancer, [{ op: 'add', path: '/stock', value: 2 }]));
  await appendOne(log, action(countZero, [{ op: 'replace', path: '/stock', value: 3 }]));
  await appendOne(log, effect(aliceKey));
  await appendOne(log, action(gibson, [{ op: 'add', path: '/born', value: 1948 }]));
  await appendOne(log, effect(['key', 'nobody']));
  await appendOne(log, effect(bobKey));
  return log;
}

export function readReplay(engine: TestEngine): void {
  describe('read', () => {
    it('yields every event in ascending seq from `from`', async () => {
      const log = await shop(engine);
      expect(await seqs(log)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await seqs(log, { from: 7, replay: false })).toEqual([7, 8, 9]);
      expect(await seqs(log, { from: 10 })).toEqual([]);
      const read = await events(log, { replay: false });
      for (const event of read) expect(event).toEqual(await log.get(event.seq));
    });

    it('yields nothing from an empty log', async () => {
      const { log } = await engine.tempLog({ clock });
      expect(await seqs(log)).toEqual([]);
    });

    it('also yields the earlier actions on aggregates that an effect at or after `from` affects, in seq order', async () => {
      const log = await shop(engine);
      // From 5: the effect at 6 affects Neuromancer (1 and 4 replayed), the one at 9 gibson (3
      // replayed); Count Zero (2) is affected by nothing. From 9: gibson's 3 and 7 are replayed.
      expect(await seqs(log, { from: 5 })).toEqual([1, 3, 4, 5, 6, 7, 8, 9]);
      expect(await seqs(log, { from: 7 })).toEqual([3, 7, 8, 9]);
      expect(await seqs(log, { from: 9 })).toEqual([3, 7, 9]);
    });

    it('replays the whole actions, exactly as stored', async () => {
      const log = await shop(engine);
      const read = await events(log, { from: 6 });
      expect(read.slice(0, 3)).toEqual([await log.get(1), await log.get(3), await log.get(4)]);
    });

    it('replays nothing for effects before `from`', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOne(log, action(neuromancer, [{ op: 'add', path: '/owner', value: 'alice' }], { triggers: [aliceKey] }));
      await appendOne(log, effect(aliceKey));
      await appendOne(log, action(neuromancer, [{ op: 'add', path: '/stock', value: 1 }]));
      await appendOne(log, action(countZero, [{ op: 'add', path: '/stock', value: 1 }]));
      expect(await seqs(log, { from: 3 })).toEqual([3, 4]);
    });

    it('does not replay with replay: false', async () => {
      const log = await shop(engine);
      expect(await seqs(log, { from: 5, replay: false })).toEqual([5, 6, 7, 8, 9]);
    });

    it('filters by aggregates: their actions and the effects affecting them', async () => {
      const log = await shop(engine);
      expect(await seqs(log, { aggregates: [neuromancer] })).toEqual([1, 4, 6]);
      expect(await seqs(log, { aggregates: [countZero] })).toEqual([2, 5]);
      expect(await seqs(log, { aggregates: [countZero, gibson] })).toEqual([2, 3, 5, 7, 9]);
      expect(await seqs(log, { aggregates: [['book', 'Idoru']] })).toEqual([]);
    });

    it('filters by kinds: actions on aggregates of those kinds and the effects affecting them', async () => {
      const log = await shop(engine);
      expect(await seqs(log, { kinds: ['book'] })).toEqual([1, 2, 4, 5, 6]);
      expect(await seqs(log, { kinds: ['author'] })).toEqual([3, 7, 9]);
      expect(await seqs(log, { kinds: ['author', 'book'] })).toEqual([1, 2, 3, 4, 5, 6, 7, 9]);
      expect(await seqs(log, { kinds: ['key'] })).toEqual([]);
    });

    it('applies aggregates and kinds together', async () => {
      const log = await shop(engine);
      expect(await seqs(log, { aggregates: [neuromancer, gibson], kinds: ['book'] })).toEqual([1, 4, 6]);
      expect(await seqs(log, { aggregates: [countZero], kinds: ['author'] })).toEqual([]);
    });

    it('combines filters with from and replay, replaying only the aggregates that pass the filter', async () => {
      const log = await shop(engine);
      expect(await seqs(log, { from: 5, aggregates: [neuromancer] })).toEqual([1, 4, 6]);
      expect(await seqs(log, { from: 5, aggregates: [neuromancer], replay: false })).toEqual([6]);
      expect(await seqs(log, { from: 5, aggregates: [countZero] })).toEqual([5]);
      expect(await seqs(log, { from: 5, kinds: ['book'] })).toEqual([1, 4, 5, 6]);
      expect(await seqs(log, { from: 5, kinds: ['author'] })).toEqual([3, 7, 9]);
      expect(await seqs(log, { from: 8, kinds: ['author'], replay: false })).toEqual([9]);
    });
  });

  describe('get and head', () => {
    it('gets the event at a seq, and undefined where there is none', async () => {
      const log = await shop(engine);
      const first = await log.get(1);
      expect(first).toEqual({
        seq: 1,
        timestamp: clock(),
        source: 'test',
        action: { reason: 'edit', actor: ['user', 'alice'], aggregate: neuromancer, patch: [{ op: 'add', path: '/owner', value: 'alice' }] },
        triggers: [aliceKey],
      });
      expect(await log.get(6)).toEqual({ seq: 6, timestamp: clock(), source: 'test', effect: { reason: 'shredded', trigger: aliceKey } });
      expect(await log.get(10)).toBeUndefined();
      expect(await log.get(Number.MAX_SAFE_INTEGER)).toBeUndefined();
    });

    it('refuses a seq that is not a positive integer', async () => {
      const log = await shop(engine);
      await expect(log.get(0)).rejects.toThrow(InvalidArgumentError);
      await expect(log.get(1.5)).rejects.toThrow(InvalidArgumentError);
    });

    it('reports the highest seq as head, 0 when empty', async () => {
      const { log } = await engine.tempLog({ clock });
      expect(await log.head()).toBe(0);
      await log.append([action(neuromancer, [{ op: 'add', path: '/a', value: 1 }]), effect(aliceKey)], { base: 0 });
      expect(await log.head()).toBe(2);
    });
  });

  describe('state', () => {
    it('folds the aggregate’s patches from {} and reports the head it read at', async () => {
      const log = await shop(engine);
      expect(await log.state(neuromancer)).toEqual({ state: { owner: 'alice', stock: 2 }, head: 9 });
      expect(await log.state(countZero)).toEqual({ state: { stock: 3 }, head: 9 });
      expect(await log.state(['book', 'Idoru'])).toEqual({ state: {}, head: 9 });
    });

    it('reports a head that is the natural base for the next append', async () => {
      const log = await shop(engine);
      const { head } = await log.state(countZero);
      const result = await log.append([action(countZero, [{ op: 'replace', path: '/stock', value: 4 }])], { base: head });
      expect(result.status).toBe('ok');
    });

    it('leaves the state unchanged, as a unit, when a patch fails', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOne(log, action(neuromancer, [{ op: 'add', path: '/stock', value: 3 }, { op: 'add', path: '/price', value: 10 }]));
      // The replace would succeed, but the test after it fails: nothing of this patch applies.
      await appendOne(log, action(neuromancer, [{ op: 'replace', path: '/price', value: 12 }, { op: 'test', path: '/stock', value: 99 }]));
      expect(await log.state(neuromancer)).toEqual({ state: { stock: 3, price: 10 }, head: 2 });
      // A path that cannot be resolved fails the same way.
      await appendOne(log, action(neuromancer, [{ op: 'add', path: '/tags', value: [] }, { op: 'replace', path: '/missing/deep', value: 1 }]));
      expect(await log.state(neuromancer)).toEqual({ state: { stock: 3, price: 10 }, head: 3 });
      // Later patches still apply.
      await appendOne(log, action(neuromancer, [{ op: 'test', path: '/stock', value: 3 }, { op: 'replace', path: '/stock', value: 2 }]));
      expect(await log.state(neuromancer)).toEqual({ state: { stock: 2, price: 10 }, head: 4 });
    });

    it('folds move, copy and remove', async () => {
      const { log } = await engine.tempLog({ clock });
      await appendOne(log, action(neuromancer, [{ op: 'add', path: '/draft', value: { title: 'Neuromancer', tags: ['a'] } }]));
      await appendOne(log, action(neuromancer, [
        { op: 'copy', from: '/draft/tags', path: '/tags' },
        { op: 'move', from: '/draft/title', path: '/title' },
        { op: 'remove', path: '/draft' },
        { op: 'add', path: '/tags/-', value: 'b' },
      ]));
      expect((await log.state(neuromancer)).state).toEqual({ title: 'Neuromancer', tags: ['a', 'b'] });
    });
  });

  describe('reading a large log', () => {
    it('streams 20,000 events in order and lets the reader stop early', async () => {
      const { log } = await engine.tempLog({ clock });
      const total = 20_000;
      for (let batch = 0; batch < total / 1000; batch++) {
        const result = await log.append(
          Array.from({ length: 1000 }, (_, i) => action(['book', (batch * 1000 + i) % 50], [{ op: 'add', path: '/n', value: batch * 1000 + i }])),
          { base: batch * 1000 },
        );
        expect(result.status).toBe('ok');
      }
      let count = 0;
      let previous = 0;
      for await (const event of log.read()) {
        expect(event.seq).toBe(previous + 1);
        previous = event.seq;
        count++;
      }
      expect(count).toBe(total);

      const early: number[] = [];
      for await (const event of log.read({ from: 12_345 })) {
        early.push(event.seq);
        if (early.length === 3) break;
      }
      expect(early).toEqual([12_345, 12_346, 12_347]);

      // Stopping early leaves the log fully usable.
      const next = await log.append([action(['book', 'last'], [{ op: 'add', path: '/n', value: 0 }])], { base: total });
      expect(next.status).toBe('ok');
      expect(await seqs(log, { from: total })).toEqual([total, total + 1]);
      expect(await seqs(log, { aggregates: [['book', 7]], from: 19_000 })).toHaveLength(20);
    });
  });

  describe('after close', () => {
    it('throws LogClosedError from read and every other call after close', async () => {
      const { log } = await engine.tempLog({ clock });
      await log.append([action(neuromancer, [{ op: 'add', path: '/a', value: 1 }])], { base: 0 });
      await log.close();
      await expect(seqs(log)).rejects.toThrow(LogClosedError);
      await expect(log.head()).rejects.toThrow(LogClosedError);
      await expect(log.get(1)).rejects.toThrow(LogClosedError);
      await expect(log.state(neuromancer)).rejects.toThrow(LogClosedError);
      await expect(log.conflicts(0, neuromancer)).rejects.toThrow(LogClosedError);
      await expect(log.verify()).rejects.toThrow(LogClosedError);
      await expect(log.append([action(neuromancer, [{ op: 'add', path: '/b', value: 1 }])], { base: 1 })).rejects.toThrow(LogClosedError);
    });

    it('throws LogClosedError from a read that was under way when the log closed', async () => {
      const { log } = await engine.tempLog({ clock });
      await log.append([action(neuromancer, [{ op: 'add', path: '/a', value: 1 }]), action(neuromancer, [{ op: 'add', path: '/b', value: 1 }])], { base: 0 });
      const iterator = log.read()[Symbol.asyncIterator]();
      expect((await iterator.next()).value).toMatchObject({ seq: 1 });
      await log.close();
      const error = await iterator.next().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(LogClosedError);
      expect(error).toMatchObject({ code: 'LOG_CLOSED' });
    });
  });
}
