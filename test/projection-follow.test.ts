import { describe, expect, it } from 'vitest';
import { ProjectionError, type Identity, type Log } from '../src/index.ts';
import { appendOk, entriesOf, spawnChild, waitFor, type Child } from './support/projection-fixtures.ts';
import { action, tempLog } from './support/temp-log.ts';

const order = (n: number): Identity => ['order', n];
/** How long an append may take to show in a followed projection on a busy machine. */
const DEADLINE_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function placeOrder(log: Log, n: number, total: number): Promise<number> {
  const [event] = await appendOk(log, [action(order(n), [{ op: 'add', path: '/total', value: total }])]);
  return event?.seq as number;
}

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
  it('catches up first, then takes appends of this process as they are made', async () => {
    const { log } = await tempLog();
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
    const { log } = await tempLog();
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

  it('reports an apply that throws to onError and goes on following', async () => {
    const { log } = await tempLog();
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
    const { log } = await tempLog();
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
});

describe('stop', () => {
  it('ends following: appends of this process or another are no longer taken', async () => {
    const { log, path } = await tempLog();
    const orders = log.projection('orders');
    const stop = orders.follow();
    try {
      await placeOrder(log, 1, 10);
      expect(await waitFor(async () => (await orders.position()) === 1, DEADLINE_MS)).toBeDefined();
    } finally {
      await stop();
    }
    expect(await orders.position()).toBe(1);

    await placeOrder(log, 2, 20);
    const child = spawnChild('projection-append.ts', [path]);
    await child.line('ready');
    child.send('append 3 30');
    await child.line('appended ');
    child.send('exit');
    expect(await exitWithin(child, 10_000), child.stderr()).toBe(0);
    // Several poll periods later, nothing moved.
    await sleep(300);
    expect(await log.head()).toBe(3);
    expect(await orders.position()).toBe(1);
    expect(await entriesOf(orders)).toEqual([[order(1), { total: 10 }]]);
    // Stopping again is harmless; a catch-up still works by hand.
    await stop();
    expect(await orders.catchUp()).toEqual({ from: 2, to: 3, actions: 2, replayed: 0 });
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
