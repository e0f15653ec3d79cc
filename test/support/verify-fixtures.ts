/** The log the verify tests check: nine events over four aggregates, with effects. */
import type { Identity, Log, NewEvent } from '../../src/index.ts';
import { action, effect } from './temp-log.ts';

export const a: Identity = ['book', 'Neuromancer'];
export const b: Identity = ['book', 'Count Zero'];
export const c: Identity = ['author', 'gibson'];
export const d: Identity = ['book', 'Idoru'];
export const key1: Identity = ['key', 'alice'];
export const key2: Identity = ['consent', 'alice'];
export const key3: Identity = ['key', 'bob'];

async function appendOk(log: Log, events: NewEvent[]): Promise<void> {
  const result = await log.append(events, { base: await log.head() });
  if (result.status !== 'ok') throw new Error(`expected ok, got ${result.status}`);
}

/**
 *  1 a, linked to key1 and key2      6 effect on a key linked to nothing
 *  2 b                               7 d, linked to key3   } one batch
 *  3 c, linked to key1               8 effect key3         }
 *  4 effect key1 (affects a and c)   9 b
 *  5 a
 */
export async function populate(log: Log): Promise<void> {
  await appendOk(log, [action(a, [{ op: 'add', path: '/title', value: 'Neuromancer' }], { triggers: [key1, key2] })]);
  await appendOk(log, [action(b, [{ op: 'add', path: '/title', value: 'Count Zero' }])]);
  await appendOk(log, [action(c, [{ op: 'add', path: '/email', value: 'gibson@example.com' }], { triggers: [key1] })]);
  await appendOk(log, [effect(key1)]);
  await appendOk(log, [action(a, [{ op: 'add', path: '/stock', value: 1 }])]);
  await appendOk(log, [effect(['key', 'nobody'])]);
  await appendOk(log, [action(d, [{ op: 'add', path: '/title', value: 'Idoru' }], { triggers: [key3] }), effect(key3)]);
  await appendOk(log, [action(b, [{ op: 'add', path: '/stock', value: 2 }])]);
}
