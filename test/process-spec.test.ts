/**
 * processSpec (SPEC 13): the real process manager and deciders on a throw-away store, failures
 * as node's AssertionError with expected and actual side by side.
 */
import { AssertionError } from 'node:assert';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createCommandService, createProcessManager, InvalidArgumentError, type Log, type ProcessManager } from '../src/index.ts';
import { processSpec } from '../src/testing/index.ts';
import { rejection } from './support/crypto-fixtures.ts';
import { reserve, ship } from './support/reaction-fixtures.ts';
import { tempLog } from './support/temp-log.ts';

interface Order { status: string; payments: number }

/** On a payment: reserve the sku, ask for shipping. The manager is defined on a log of the app's; specs run it elsewhere. */
function fulfilment(log: Log, onRejected: 'record' | 'stop' = 'record'): ProcessManager<Order> {
  return createProcessManager<Order>(log, 'fulfilment', {
    kinds: ['order'],
    from: 1_000_000,
    instance: (event) => ('action' in event ? (event.action.aggregate[1] as number) : undefined),
    init: () => ({ status: 'new', payments: 0 }),
    react(state, event) {
      if (!('action' in event) || event.action.reason !== 'paid') return { state };
      const order = event.action.aggregate[1] as number;
      const sku = (event.action.patch[0] as { value: number }).value;
      return { state: { status: 'reserving', payments: state.payments + 1 }, commands: [{ name: 'reserve', command: { sku, order, seq: event.seq } }, { name: 'ship', command: { order, seq: event.seq } }] };
    },
    commands: createCommandService(log, { deciders: [reserve, ship] }),
    onRejected,
  });
}

const stocked = (sku: number, count: number) => ({ aggregate: ['stock', sku] as ['stock', number], reason: 'stocked', patch: [{ op: 'add' as const, path: '/count', value: count }, { op: 'add' as const, path: '/by', value: [] }] });
const paid = (order: number, sku: number) => ({ aggregate: ['order', order] as ['order', number], reason: 'paid', patch: [{ op: 'add' as const, path: '/sku', value: sku }] });
const testDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('coherence-test-'));

describe('processSpec', () => {
  it('passes when the manager asks for exactly the expected commands and leaves the state as expected', async () => {
    const { log } = await tempLog();
    const before = testDirs().length;
    // The history is handled first (from its first event, whatever `from` says): its reaction
    // wrote seqs 3 to 5, so the event of when is 6.
    await processSpec(fulfilment(log)).given([stocked(1, 5), paid(7, 1)]).when(paid(7, 1))
      .thenCommands([{ name: 'reserve', command: { sku: 1, order: 7, seq: 6 } }, { name: 'ship', command: { order: 7, seq: 6 } }])
      .thenState((s) => s?.payments === 2)
      .thenState({ status: 'reserving', payments: 2 });
    expect(testDirs().length).toBe(before);
    // Nothing of it on the app's log.
    expect(await log.head()).toBe(0);
  });

  it('fails with an AssertionError showing expected and actual commands side by side', async () => {
    const { log } = await tempLog();
    const error = await rejection(Promise.resolve(processSpec(fulfilment(log)).given([stocked(1, 5)]).when(paid(7, 1)).thenCommands([{ name: 'reserve', command: { sku: 2, order: 7, seq: 2 } }])));
    expect(error).toBeInstanceOf(AssertionError);
    const message = (error as Error).message;
    expect(message.split('\n')[0]).toBe('processSpec("fulfilment") when {"source":"given","action":{"reason":"paid","actor":["test","given"],"aggregate":["order",7],"patch":[{"op":"add","path":"/sku","value":1}]}}: expected other commands');
    expect(message).toContain('+ actual - expected');
    expect(message).toMatch(/\+ +sku: 1/);
    expect(message).toMatch(/- +sku: 2/);
  });

  it('passes thenRejected when a decider refuses a command, recorded or stopping, and fails it when none was refused', async () => {
    const { log } = await tempLog();
    await processSpec(fulfilment(log)).given([]).when(paid(7, 1)).thenRejected('out-of-stock');
    await processSpec(fulfilment(log)).given([]).when(paid(7, 1)).thenRejected('out-of-stock', 'reserve').thenState({ status: 'reserving', payments: 1 });
    await processSpec(fulfilment(log, 'stop')).given([]).when(paid(7, 1)).thenRejected('out-of-stock', 'reserve').thenState((s) => s === undefined);
    const error = await rejection(Promise.resolve(processSpec(fulfilment(log)).given([stocked(1, 1)]).when(paid(7, 1)).thenRejected('out-of-stock')));
    expect(error).toBeInstanceOf(AssertionError);
    expect((error as Error).message.split('\n')[0]).toMatch(/: expected a command rejected "out-of-stock", got none$/);
  });

  it('fails thenCommands when one of them was refused, and thenState when the check says no', async () => {
    const { log } = await tempLog();
    const refused = await rejection(Promise.resolve(processSpec(fulfilment(log)).given([]).when(paid(7, 1)).thenCommands([{ name: 'reserve', command: { sku: 1, order: 7, seq: 1 } }, { name: 'ship', command: { order: 7, seq: 1 } }])));
    expect((refused as Error).message.split('\n')[0]).toMatch(/: expected every command accepted, got 1 rejected$/);
    const state = await rejection(Promise.resolve(processSpec(fulfilment(log)).given([stocked(1, 1)]).when(paid(7, 1)).thenState((s) => s?.status === 'shipped')));
    expect(state).toBeInstanceOf(AssertionError);
    expect(state).toMatchObject({ actual: { state: { status: 'reserving', payments: 1 } } });
    const other = await rejection(Promise.resolve(processSpec(fulfilment(log)).given([stocked(1, 1)]).when(paid(7, 1)).thenState({ status: 'new', payments: 0 })));
    expect((other as Error).message).toMatch(/expected another state/);
  });

  it('refuses a manager that is not one, a spec awaited without an expectation, and bad expectations', async () => {
    const { log } = await tempLog();
    expect(() => processSpec({} as ProcessManager<unknown>)).toThrow(InvalidArgumentError);
    await expect(processSpec(fulfilment(log)).given([]).when(paid(7, 1))).rejects.toThrow(/finish .when\(event\) with/);
    expect(() => processSpec(fulfilment(log)).given('x' as never)).toThrow(/^given\(events\): expected an array of events/);
    expect(() => processSpec(fulfilment(log)).when([paid(7, 1)] as never)).toThrow(/^when\(event\): expected one event/);
    expect(() => processSpec(fulfilment(log)).when(paid(7, 1)).thenRejected('')).toThrow(/^thenRejected\(reason\)/);
    expect(() => processSpec(fulfilment(log)).when(paid(7, 1)).thenCommands({} as never)).toThrow(/^thenCommands\(commands\)/);
  });
});
