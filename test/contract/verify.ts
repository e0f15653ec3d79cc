import { describe, expect, it } from 'vitest';
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
  });
}
