/**
 * Fixtures of the process manager and notifier tests: a shop whose orders are paid, a process
 * manager that reserves stock for each payment (recording the causing seq in what it writes),
 * and the helpers the crash tests share with their children.
 */
import { createCommandService, createProcessManager, decider, RejectedError, type CommandService, type Identity, type LogEvent, type Log, type NewAction, type ProcessManager } from '../../src/index.ts';

export const SKUS = 500;
export const ORDERS = 2_000;
export const STOCK = 15;

export interface Stock {
  count: number;
  /** The seqs of the events whose reservations took a unit, in order. */
  by: number[];
}

/** Reserves one unit of a sku for the event `seq`; refuses when none is left. */
export const reserve = decider<{ sku: number; order: number; seq: number }>({
  name: 'reserve',
  aggregates: ({ sku }) => [['stock', sku]],
  decide({ sku, seq }, states) {
    const stock = states.get(['stock', sku]) as Partial<Stock>;
    if ((stock.count ?? 0) <= 0) throw new RejectedError('out-of-stock', { sku });
    return [{ aggregate: ['stock', sku], reason: 'reserved', patch: [{ op: 'replace', path: '/count', value: (stock.count as number) - 1 }, { op: 'add', path: '/by/-', value: seq }] }];
  },
});

/** Asks for shipping: one action on the order's shipment, recording the causing seq. */
export const ship = decider<{ order: number; seq: number }>({
  name: 'ship',
  aggregates: ({ order }) => [['shipment', order]],
  decide({ order, seq }) {
    return [{ aggregate: ['shipment', order], reason: 'requested', patch: [{ op: 'add', path: `/requested/${seq}`, value: true }] }];
  },
});

export interface OrderState {
  payments: number;
  last: number;
}

export function shopCommands(log: Log): CommandService {
  return createCommandService(log, { deciders: [reserve, ship], retry: { attempts: 10, minDelayMs: 1, maxDelayMs: 20 } });
}

/** The manager of the crash tests: each payment of an order reserves a unit of the order's sku. */
export function fulfilment(log: Log, commands: CommandService = shopCommands(log), onRejected: 'record' | 'stop' = 'record'): ProcessManager<OrderState> {
  return createProcessManager<OrderState>(log, 'fulfilment', {
    kinds: ['order'],
    instance: (event: LogEvent) => ('action' in event ? (event.action.aggregate[1] as number) : undefined),
    init: () => ({ payments: 0, last: 0 }),
    react(state, event) {
      if (!('action' in event) || event.action.reason !== 'paid') return { state };
      const order = event.action.aggregate[1] as number;
      return { state: { payments: state.payments + 1, last: event.seq }, commands: [{ name: 'reserve', command: { sku: order % SKUS, order, seq: event.seq } }] };
    },
    commands,
    onRejected,
  });
}

/** The workload: `count` payments, order `k % ORDERS` each, after one stocking action per sku. */
export function stocking(): NewAction[] {
  return Array.from({ length: SKUS }, (_, sku) => ({
    source: 'shop',
    action: { reason: 'stocked', actor: ['user', 'clerk'] as Identity, aggregate: ['stock', sku] as Identity, patch: [{ op: 'add', path: '/count', value: STOCK }, { op: 'add', path: '/by', value: [] }] },
  }));
}

export function payments(from: number, count: number): NewAction[] {
  return Array.from({ length: count }, (_, i) => ({
    source: 'shop',
    action: { reason: 'paid', actor: ['user', 'customer'] as Identity, aggregate: ['order', (from + i) % ORDERS] as Identity, patch: [{ op: 'add', path: `/paid/${from + i}`, value: true }] },
  }));
}

/** Appends the workload: the stock, then `count` payments in batches of 1000. */
export async function appendWorkload(log: Log, count: number): Promise<void> {
  const ok = async (events: NewAction[]) => {
    const result = await log.append(events, { base: await log.head() });
    if (result.status !== 'ok') throw new Error(`workload: ${result.status}`);
  };
  await ok(stocking());
  for (let from = 0; from < count; from += 1000) await ok(payments(from, Math.min(1000, count - from)));
}

/** What the manager wrote, by the seq that caused it: reservations, and rejections. */
export async function effectsBySeq(log: Log, manager: ProcessManager<OrderState>): Promise<{ reserved: Map<number, number>; rejected: Map<number, number> }> {
  const reserved = new Map<number, number>();
  for await (const event of log.read({ kinds: ['stock'], replay: false })) {
    if (!('action' in event) || event.action.reason !== 'reserved') continue;
    const seq = (event.action.patch[1] as { value: number }).value;
    reserved.set(seq, (reserved.get(seq) ?? 0) + 1);
  }
  const rejected = new Map<number, number>();
  for await (const { seq } of manager.rejections()) rejected.set(seq, (rejected.get(seq) ?? 0) + 1);
  return { reserved, rejected };
}

/** Everything a clean run and a troubled one must agree on: every stock, every order's state, the rejections. */
export async function outcome(log: Log, manager: ProcessManager<OrderState>): Promise<unknown> {
  const stock: unknown[] = [];
  for (let sku = 0; sku < SKUS; sku++) stock.push((await log.state(['stock', sku])).state);
  const orders: unknown[] = [];
  for (let order = 0; order < ORDERS; order++) orders.push(await manager.get(order));
  const rejections: unknown[] = [];
  for await (const rejection of manager.rejections()) rejections.push(rejection);
  return { stock, orders, rejections };
}
