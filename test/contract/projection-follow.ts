import { describe, expect, it } from 'vitest';
import { ProjectionError, type Identity } from '../../src/index.ts';
import { entriesOf, expectStopEndsFollowing, FOLLOW_DEADLINE_MS as DEADLINE_MS, placeOrder, sleep, waitFor } from '../support/projection-fixtures.ts';
import type { TestEngine } from './describe-engine.ts';

const order = (n: number): Identity => ['order', n];
/** SPEC 15 and engine.ts: another connection's commit is heard within 100 ms. */
const WATCH_MS = 100;
/** What a busy two-core machine may add to it. */
const SLACK_MS = 150;

export function projectionFollow(engine: TestEngine): void {
  describe('follow', () => {
    it('catches up first, then takes appends of this process as they are made', async () => {
      const { log } = await engine.tempLog();
      await placeOrder(log, 1, 10);
      const orders = log.projection('orders');
      const stop = orders.follow();
      try {
        expect(await waitFor(async () => (await orders.position()) === 1, DEADLINE_MS)).toBeDefined();
        await placeOrder(log, 2, 20);
        await placeOrder(log, 1, 11);
        expect(await waitFor(async () => (await orders.position()) === 3, DEADLINE_MS)).toBeDefined();
        expect(await entriesOf(orders)).toEqual([[order(1), { total: 11 }], [order(2), { total: 20 }]]);
      } finally {
        await stop();
      }
    });

    it('starts the catch-up of an append of this process at once, without waiting for a poll', async () => {
      const { log } = await engine.tempLog();
      await placeOrder(log, 1, 10);
      const orders = log.projection('orders');
      const stop = orders.follow();
      let seq: number;
      try {
        expect(await waitFor(async () => (await orders.position()) === 1, DEADLINE_MS)).toBeDefined();
        // Let the first catch-up settle, so the append below is the only thing left to follow.
        await sleep(20);
        seq = await placeOrder(log, 2, 20);
      } finally {
        // stop() waits for the catch-up under way: the append's, started when the append returned.
        await stop();
      }
      expect(await orders.position()).toBe(seq);
      expect(await orders.get(order(2))).toEqual({ total: 20 });
    });

    it('reports an apply that throws to onError and goes on following', async () => {
      const { log } = await engine.tempLog();
      let failOnce = true;
      const errors: unknown[] = [];
      const totals = log.projection<number>('totals', {
        init: () => 0,
        apply: (sum, event) => {
          if (event.seq === 2 && failOnce) {
            failOnce = false;
            throw new Error('not now');
          }
          return sum + ((event.action.patch[0] as { value: number }).value);
        },
      });
      const stop = totals.follow({ onError: (error) => errors.push(error) });
      try {
        await placeOrder(log, 1, 10);
        await placeOrder(log, 1, 20);
        expect(await waitFor(async () => errors.length === 1, DEADLINE_MS)).toBeDefined();
        expect(errors[0]).toBeInstanceOf(ProjectionError);
        expect((errors[0] as ProjectionError).seq).toBe(2);
        // The next append makes it try again, and now apply goes through.
        await placeOrder(log, 1, 30);
        expect(await waitFor(async () => (await totals.position()) === 3, DEADLINE_MS)).toBeDefined();
        expect(await totals.get(order(1))).toBe(60);
        expect(errors).toHaveLength(1);
      } finally {
        await stop();
      }
    });

    it('does no work while the log is idle', async () => {
      const { log } = await engine.tempLog();
      await placeOrder(log, 1, 10);
      let applied = 0;
      const counts = log.projection<number>('counts', { init: () => 0, apply: (n) => (applied++, n + 1) });
      const stop = counts.follow();
      try {
        expect(await waitFor(async () => (await counts.position()) === 1, DEADLINE_MS)).toBeDefined();
        await sleep(300);
        expect(applied).toBe(1);
        expect(await counts.get(order(1))).toBe(1);
      } finally {
        await stop();
      }
    });

    it('shows the appends made through another log on the same store within 100 ms', async () => {
      const { log, reopen } = await engine.tempLog();
      const other = await reopen();
      const orders = log.projection('orders');
      const stop = orders.follow();
      const heard: number[] = [];
      try {
        // Let the first catch-up (of an empty log) settle.
        await sleep(20);
        for (let n = 1; n <= 5; n++) {
          const seq = await placeOrder(other, n, n * 10);
          const took = await waitFor(async () => (await orders.position()) >= seq, DEADLINE_MS, 1);
          expect(took, `event ${seq} from the other log`).toBeDefined();
          heard.push(took as number);
          expect(await orders.get(order(n))).toEqual({ total: n * 10 });
        }
      } finally {
        await stop();
      }
      expect(Math.max(...heard), `heard after ${heard.map((ms) => ms.toFixed(0)).join(', ')} ms`).toBeLessThan(WATCH_MS + SLACK_MS);
    });
  });

  describe('stop', () => {
    it('ends following: appends of this log or another on the same store are no longer taken', async () => {
      const { log, reopen } = await engine.tempLog();
      await expectStopEndsFollowing(log, async () => {
        const other = await reopen();
        await placeOrder(other, 3, 30);
        await other.close();
      });
    });
  });
}
