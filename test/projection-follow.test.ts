import { describe, expect, it } from 'vitest';
import type { Identity } from '../src/index.ts';
import { entriesOf, expectStopEndsFollowing, FOLLOW_DEADLINE_MS as DEADLINE_MS, placeOrder, spawnChild, waitFor, type Child } from './support/projection-fixtures.ts';
import { tempLog } from './support/temp-log.ts';

const order = (n: number): Identity => ['order', n];

/** Resolves with the exit code, or 'still running' when the child has not ended within `ms`. */
async function exitWithin(child: Child, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  try {
    return await Promise.race([child.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('follow', () => {
  it('shows the appends of another process within the deadline', async () => {
    const { log, path } = await tempLog();
    const orders = log.projection('orders');
    const stop = orders.follow();
    const child = spawnChild('projection-append.ts', [path]);
    try {
      await child.line('ready');
      for (let n = 1; n <= 5; n++) {
        child.send(`append ${n} ${n * 10}`);
        const seq = Number((await child.line('appended ')).split(' ')[1]);
        const took = await waitFor(async () => (await orders.position()) >= seq, DEADLINE_MS);
        expect(took, `event ${seq} from the other process`).toBeDefined();
        expect(await orders.get(order(n))).toEqual({ total: n * 10 });
      }
      child.send('exit');
      expect(await exitWithin(child, 10_000), child.stderr()).toBe(0);
    } finally {
      child.process.kill();
      await stop();
    }
  });
});

describe('stop', () => {
  it('ends following: appends of this process or another are no longer taken', async () => {
    const { log, path } = await tempLog();
    await expectStopEndsFollowing(log, async () => {
      const child = spawnChild('projection-append.ts', [path]);
      await child.line('ready');
      child.send('append 3 30');
      await child.line('appended ');
      child.send('exit');
      expect(await exitWithin(child, 10_000), child.stderr()).toBe(0);
    });
  });

  it('lets a process that followed end by itself once it has stopped and closed the log', async () => {
    const { log, path } = await tempLog();
    const child = spawnChild('projection-follow.ts', [path, 'stop', '2']);
    try {
      await child.line('following');
      await placeOrder(log, 1, 10);
      await placeOrder(log, 2, 20);
      expect(await child.line('seen ')).toBe('seen 2');
      await child.line('closed');
      expect(await exitWithin(child, 10_000), child.stderr()).toBe(0);
      expect(await entriesOf(log.projection('followed'))).toEqual([[order(1), { total: 10 }], [order(2), { total: 20 }]]);
    } finally {
      child.process.kill('SIGKILL');
    }
  });

  it('is not needed once the log is closed: a follow left running neither reports errors nor keeps the process alive', async () => {
    const { log, path } = await tempLog();
    const child = spawnChild('projection-follow.ts', [path, 'forget', '1']);
    try {
      await child.line('following');
      await placeOrder(log, 1, 10);
      await child.line('closed');
      expect(await exitWithin(child, 10_000), child.stderr()).toBe(0);
      expect(child.stderr()).not.toContain('LogClosedError');
    } finally {
      child.process.kill('SIGKILL');
    }
  });
});
