/**
 * SPEC 11 on every engine: a process manager's state, commands and mark in one append, taken
 * once by two logs on one store; rejections recorded; a notifier's retries, dead letters, order
 * per aggregate and redelivery marked from another log; both listed by stats.
 */
import { describe, expect, it } from 'vitest';
import { createNotifier, type LogEvent } from '../../src/index.ts';
import { appendOk } from '../support/projection-fixtures.ts';
import { appendWorkload, effectsBySeq, fulfilment, SKUS } from '../support/reaction-fixtures.ts';
import { action } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

export function reactions(engine: TestEngine): void {
  describe('process managers and notifiers', () => {
    it('a process manager run by two logs on the store at once takes each event once, rejections included', async () => {
      const { log, reopen } = await engine.tempLog();
      await appendWorkload(log, 300);
      const other = await reopen();
      const [a, b] = [fulfilment(log), fulfilment(other)];
      await Promise.all([a.catchUp(), b.catchUp()]);
      const { reserved, rejected } = await effectsBySeq(log, a);
      for (let seq = SKUS + 1; seq <= SKUS + 300; seq++) expect((reserved.get(seq) ?? 0) + (rejected.get(seq) ?? 0), `seq ${seq}`).toBe(1);
      expect(await a.get(7)).toEqual({ payments: 1, last: SKUS + 8 });
      const stats = await log.stats();
      expect(stats.processManagers.map(({ name, rejections }) => ({ name, rejections }))).toEqual([{ name: 'fulfilment', rejections: rejected.size }]);
      expect(stats.projections).toEqual([]);
    });

    it('a notifier dead-letters, keeps order per aggregate, and delivers a redelivery marked by another log', async () => {
      const { log, reopen } = await engine.tempLog();
      await appendOk(log, [1, 2, 1, 2].map((n, i) => action(['customer', n], [{ op: 'add', path: '/i', value: i }])));
      let down = true;
      const calls: string[] = [];
      const handle = async (event: LogEvent, { attempt }: { attempt: number }) => {
        calls.push(`${event.seq}#${attempt}`);
        if (down && event.seq === 1) throw new Error('down');
      };
      const mailer = createNotifier(log, 'mail', { handle, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
      expect(await mailer.catchUp()).toMatchObject({ delivered: 2, deadLettered: 1 });
      // Order is kept per aggregate (customer 1: events 1 and 3; customer 2: events 2 and 4); how
      // the two interleave depends on when the retry's timer fires.
      const of = (seqs: number[]) => calls.filter((call) => seqs.includes(Number(call.split('#')[0])));
      expect(of([1, 3])).toEqual(['1#1', '1#2']);
      expect(of([2, 4])).toEqual(['2#1', '4#1']);
      expect(calls).toHaveLength(4);
      expect((await log.stats()).notifiers).toEqual([{ name: 'mail', position: 4, lag: 0, deadLetters: 1 }]);
      down = false;
      const other = await reopen();
      await createNotifier(other, 'mail', { handle: () => Promise.reject(new Error('not here')) }).redeliver(1);
      await mailer.catchUp();
      expect(calls.slice(4)).toEqual(['1#3', '3#1']);
      const letters = [];
      for await (const letter of mailer.deadLetters()) letters.push(letter);
      expect(letters).toEqual([]);
    });
  });
}
