import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, type AppendResult, type Identity, type LogEvent, type NewEvent } from '../../src/index.ts';
import { rejection } from '../support/crypto-fixtures.ts';
import { action, allEvents, effect } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const book: Identity = ['book', 'Neuromancer'];
const otherBook: Identity = ['book', 'Count Zero'];

const restock = (stock: number): NewEvent => action(book, [{ op: 'replace', path: '/stock', value: stock }]);

function written(result: AppendResult): LogEvent[] {
  if (result.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  return result.events;
}

export function idempotency(engine: TestEngine): void {
  describe('idempotencyKey', () => {
    /** A log holding the book at seq 1. */
    async function stocked() {
      const temp = await engine.tempLog({ clock });
      written(await temp.log.append([action(book, [{ op: 'add', path: '/stock', value: 1 }])], { base: 0 }));
      return temp;
    }

    it('writes a batch once: the same key again writes nothing and returns duplicate with the events written then', async () => {
      const { log } = await stocked();
      const batch = [restock(2), effect(['key', 'alice']), action(otherBook, [{ op: 'add', path: '/stock', value: 5 }])];
      const first = written(await log.append(batch, { base: 1, idempotencyKey: 'order-7' }));
      expect(first.map((e) => e.seq)).toEqual([2, 3, 4]);
      const before = await allEvents(log);

      expect(await log.append(batch, { base: 4, idempotencyKey: 'order-7' })).toEqual({ status: 'duplicate', events: first });
      // What counts is the key, not the events: another batch under it is a duplicate too.
      expect(await log.append([restock(9)], { base: 4, idempotencyKey: 'order-7' })).toEqual({ status: 'duplicate', events: first });
      expect(await allEvents(log)).toEqual(before);
      expect(await log.head()).toBe(4);
      expect(await log.verify()).toEqual({ ok: true, events: 4 });
    });

    it('checks the key before the conflict check and the base, so a retry of a batch that went through is never a conflict', async () => {
      const { log } = await stocked();
      const first = written(await log.append([restock(2)], { base: 1, idempotencyKey: 'retry-me' }));
      written(await log.append([restock(3)], { base: 2 }));
      // The retry is based where the first attempt was: it would conflict with seq 2 and 3.
      expect(await log.append([restock(2)], { base: 1, idempotencyKey: 'retry-me' })).toEqual({ status: 'duplicate', events: first });
      expect(await log.append([restock(2)], { base: 99, idempotencyKey: 'retry-me' })).toEqual({ status: 'duplicate', events: first });
      expect(await log.head()).toBe(3);
    });

    it('records nothing for a conflicting, invalid-base or dry-run append, so the key takes the batch once it goes through', async () => {
      const { log } = await stocked();
      written(await log.append([restock(2)], { base: 1 }));
      expect((await log.append([restock(5)], { base: 1, idempotencyKey: 'late' })).status).toBe('conflict');
      expect(await log.append([restock(5)], { base: 7, idempotencyKey: 'late' })).toEqual({ status: 'invalid-base', head: 2 });
      const dry = await log.append([restock(5)], { base: 2, idempotencyKey: 'late', dryRun: true });
      expect(dry.status).toBe('ok');
      expect(await log.head()).toBe(2);

      const real = await log.append([restock(5)], { base: 2, idempotencyKey: 'late' });
      expect(real).toEqual(dry);
      // Now seen: a dry run returns exactly what the real append would, the duplicate.
      const duplicate = { status: 'duplicate', events: written(real) };
      expect(await log.append([restock(5)], { base: 3, idempotencyKey: 'late', dryRun: true })).toEqual(duplicate);
      expect(await log.append([restock(5)], { base: 3, idempotencyKey: 'late' })).toEqual(duplicate);
      expect(await log.head()).toBe(3);
    });

    it('lets only one of two appends in flight at once under the same key write, the other gets duplicate', async () => {
      const { log } = await stocked();
      const results = await Promise.all([
        log.append([restock(2), restock(3)], { base: 1, idempotencyKey: 'twice' }),
        log.append([restock(2), restock(3)], { base: 1, idempotencyKey: 'twice' }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['duplicate', 'ok']);
      const events = results.map((r) => (r.status === 'ok' || r.status === 'duplicate' ? r.events : []));
      expect(events[0]).toEqual(events[1]);
      expect(await log.head()).toBe(3);
    });

    it('holds for the whole store: a key seen through one log is a duplicate through another, and after reopening', async () => {
      const { log, reopen } = await stocked();
      const other = await reopen({ clock });
      const first = written(await log.append([restock(2)], { base: 1, idempotencyKey: 'shared' }));
      expect(await other.append([restock(2)], { base: 1, idempotencyKey: 'shared' })).toEqual({ status: 'duplicate', events: first });
      await log.close();
      await other.close();
      const reopened = await reopen({ clock });
      expect(await reopened.append([restock(2)], { base: 1, idempotencyKey: 'shared' })).toEqual({ status: 'duplicate', events: first });
      // Other keys are their own.
      expect((await reopened.append([restock(4)], { base: 2, idempotencyKey: 'another' })).status).toBe('ok');
      expect(await reopened.head()).toBe(3);
    });

    it('takes a key of 1 to 512 bytes of UTF-8, and refuses an empty one, a longer one or one that is not a string, writing nothing', async () => {
      const { log } = await stocked();
      // 'é' is two bytes of UTF-8: 256 of them are 512 bytes, 257 are 514.
      expect((await log.append([restock(2)], { base: 1, idempotencyKey: 'é'.repeat(256) })).status).toBe('ok');
      expect((await log.append([restock(3)], { base: 2, idempotencyKey: 'k' })).status).toBe('ok');
      for (const [idempotencyKey, message] of [
        ['', /options\.idempotencyKey: expected a non-empty string, got ""/],
        ['é'.repeat(257), /options\.idempotencyKey: expected at most 512 bytes of UTF-8, got 514/],
        ['x'.repeat(513), /options\.idempotencyKey: expected at most 512 bytes of UTF-8, got 513/],
        [42, /options\.idempotencyKey: expected a non-empty string, got 42/],
      ] as [string, RegExp][]) {
        const error = await rejection(log.append([restock(4)], { base: 3, idempotencyKey }));
        expect(error, String(idempotencyKey).slice(0, 10)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(message);
      }
      expect(await log.head()).toBe(3);
    });
  });
}
