/**
 * `coherence processes`, `coherence dead-letters` and the reactions in `coherence stats`: what
 * the command line can do about process managers and notifiers without running them.
 */
import { describe, expect, it } from 'vitest';
import { createNotifier, openLog } from '../src/index.ts';
import { cli, inParallel, ndjson, type CliRun } from './support/cli.ts';
import { fulfilment, reserve } from './support/reaction-fixtures.ts';
import { action, tempDir } from './support/temp-log.ts';

const SLOW = { timeout: 240_000 };

function expectStatus(run: CliRun, status: number): void {
  expect(run.status, `exit status; stderr: ${run.stderr}`).toBe(status);
}

const stocked = action(['stock', 1], [{ op: 'add', path: '/count', value: 1 }, { op: 'add', path: '/by', value: [] }], { reason: 'stocked' });
const paid = (order: number) => action(['order', order], [{ op: 'add', path: '/n', value: order }], { reason: 'paid' });

describe('the command line on reactions', () => {
  it('processes prints position, lag and rejections; dead-letters lists, marks for redelivery and discards; stats lists both', SLOW, async () => {
    const store = tempDir();
    const log = await openLog({ path: store });
    // Orders 501 and 1001 both want sku 1 (order % 500): the second is refused.
    await log.append([stocked, paid(501), paid(1001)], { base: 0 });
    await fulfilment(log).catchUp();
    const mailer = createNotifier(log, 'mail', { kinds: ['order'], retry: { attempts: 1 }, handle: (event) => (event.seq === 2 ? Promise.reject(new Error('smtp 554')) : Promise.resolve()) });
    await mailer.catchUp();
    await log.close();
    expect(reserve.name).toBe('reserve');

    const [processes, letters, stats, unknown, noNotifier, both] = await inParallel([
      () => cli(['processes', 'fulfilment'], { store }),
      () => cli(['dead-letters', 'mail'], { store }),
      () => cli(['stats'], { store }),
      () => cli(['processes', 'nobody'], { store }),
      () => cli(['dead-letters', 'nobody'], { store }),
      () => cli(['dead-letters', 'mail', '--redeliver', '2', '--discard', '2'], { store }),
    ]);
    expectStatus(processes, 0);
    expect(JSON.parse(processes.stdout)).toEqual({ name: 'fulfilment', position: 3, head: 7, lag: 4, rejections: [{ seq: 3, instance: 1001, name: 'reserve', reason: 'out-of-stock' }] });
    expectStatus(letters, 0);
    expect(ndjson(letters.stdout)).toEqual([{ seq: 2, aggregate: ['order', 501], attempts: 1, error: 'smtp 554', at: expect.stringMatching(/^\d{4}-/) }]);
    expectStatus(stats, 0);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      projections: [],
      processManagers: [{ name: 'fulfilment', position: 3, lag: 4, rejections: 1 }],
      notifiers: [{ name: 'mail', position: 7, lag: 0, deadLetters: 1 }],
    });
    expectStatus(unknown, 1);
    expect(unknown.stderr).toBe('coherence: no process manager named "nobody" has run on this store\n');
    expectStatus(noNotifier, 1);
    expectStatus(both, 2);

    const notOne = await cli(['dead-letters', 'mail', '--discard', '3'], { store });
    expectStatus(notOne, 1);
    expect(notOne.stderr).toBe('coherence: 3 is not a dead letter of "mail"\n');
    const marked = await cli(['dead-letters', 'mail', '--redeliver', '2'], { store });
    expectStatus(marked, 0);
    expect(marked.stderr).toMatch(/^dead letter 2 marked for redelivery/);
    expect(ndjson((await cli(['dead-letters', 'mail'], { store })).stdout)).toEqual([]);

    // The notifier, run by the application again, delivers it.
    const again = await openLog({ path: store });
    const delivered: number[] = [];
    await createNotifier(again, 'mail', { kinds: ['order'], handle: async (event) => { delivered.push(event.seq); } }).catchUp();
    expect(delivered).toEqual([2]);
    await again.close();
  });
});
