import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.ts';
import { appendOk } from '../support/crypto-fixtures.ts';
import { action, allEvents } from '../support/temp-log.ts';
import { a, populate } from '../support/verify-fixtures.ts';
import type { TestEngine } from './describe-engine.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');

export function verify(engine: TestEngine): void {
  describe('verify', () => {
    it('reports ok and no events on a fresh log', async () => {
      const { log } = await engine.tempLog({ clock });
      expect(await log.verify()).toEqual({ ok: true, events: 0 });
    });

    it('reports ok with the number of events on a populated log with effects', async () => {
      const { log } = await engine.tempLog({ clock });
      await populate(log);
      expect(await log.verify()).toEqual({ ok: true, events: 9 });
    });

    it('still reports ok after close and reopen, with the same events', async () => {
      const { log, reopen } = await engine.tempLog({ clock });
      await populate(log);
      const before = await allEvents(log);
      await log.close();
      const reopened = await reopen({ clock });
      expect(await reopened.verify()).toEqual({ ok: true, events: 9 });
      expect(await allEvents(reopened)).toEqual(before);
      await appendOk(reopened, [action(a, [{ op: 'replace', path: '/stock', value: 0 }])]);
      expect(await reopened.verify()).toEqual({ ok: true, events: 10 });
    });

    it('reports its progress to onProgress, ascending, up to the head it started at', async () => {
      const { log } = await engine.tempLog({ clock });
      for (let batch = 0; batch < 12; batch++) {
        await appendOk(log, Array.from({ length: 1000 }, (_, i) => action(['book', (batch * 1000 + i) % 30], [{ op: 'add', path: '/n', value: i }])));
      }
      const calls: [number, number][] = [];
      expect(await log.verify({ onProgress: (seq, head) => calls.push([seq, head]) })).toEqual({ ok: true, events: 12_000 });
      // At least one call on the way, and the last at the end.
      expect(calls.length).toBeGreaterThan(1);
      expect(calls.at(-1)).toEqual([12_000, 12_000]);
      const seqs = calls.map(([seq]) => seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(calls.every(([seq, head]) => head === 12_000 && seq >= 1 && seq <= head)).toBe(true);
    });

    it('refuses an onProgress that is not a function', async () => {
      const { log } = await engine.tempLog({ clock });
      await expect(log.verify({ onProgress: 'log' as never })).rejects.toThrow(InvalidArgumentError);
      await expect(log.verify(null as never)).rejects.toThrow(InvalidArgumentError);
    });
  });
}
