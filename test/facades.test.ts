/**
 * Public objects are facades: what a user holds (a Log, its Keys, a Projection, an engine handle)
 * shows its documented members and nothing else, own or on its prototype chain, and nothing
 * reachable on it leads to key material or to the storage behind it.
 */
import { describe, expect, it } from 'vitest';
import { createCommandService, createNotifier, createProcessManager, decider, memoryEngine, openLog } from '../src/index.ts';
import { newMasterKey } from './support/crypto-fixtures.ts';
import { action, tempLog } from './support/temp-log.ts';

/** Every property name reachable on `value`: its own and its prototypes', up to Object.prototype. */
function reachable(value: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = value; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const key of Reflect.ownKeys(o)) if (key !== 'constructor') names.add(String(key));
  }
  return [...names].sort();
}

/** Every value reachable from `root` through data properties and prototypes (not calls or getters), each once. */
function values(root: object): unknown[] {
  const seen = new Set<unknown>();
  const walk = (value: unknown): void => {
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) return;
    if (value === Object.prototype || value === Function.prototype) return;
    seen.add(value);
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if (descriptor !== undefined && 'value' in descriptor) walk(descriptor.value);
    }
    // A function's own prototype chain is the language's (Function, AsyncFunction...), not ours.
    if (typeof value !== 'function') walk(Object.getPrototypeOf(value));
  };
  walk(root);
  return [...seen];
}

const LOG = ['append', 'close', 'compact', 'conflicts', 'get', 'head', 'keys', 'projection', 'read', 'state', 'stats', 'verify'];
const KEYS = ['create', 'expire', 'get', 'list', 'shred'];
const PROJECTION = ['catchUp', 'entries', 'follow', 'get', 'name', 'position', 'rebuild'];
const PROCESS_MANAGER = ['catchUp', 'follow', 'get', 'name', 'position', 'rejections'];
const NOTIFIER = ['catchUp', 'deadLetters', 'discard', 'follow', 'name', 'position', 'redeliver'];

describe('public objects are facades', () => {
  it('a log shows only the documented members of Log, its keys only those of Keys, a projection only those of Projection', async () => {
    const { log } = await tempLog({ masterKey: newMasterKey() });
    expect(reachable(log)).toEqual(LOG);
    expect(reachable(log.keys)).toEqual(KEYS);
    expect(reachable(log.projection('p'))).toEqual(PROJECTION);
    expect(log.keys).toBe(log.keys);
  });

  it('an engine handle shows only its kind, and stays a handle', async () => {
    const engine = memoryEngine();
    expect(reachable(engine)).toEqual(['kind']);
    expect(engine.kind).toBe('memory');
    expect(Object.isFrozen(engine)).toBe(true);
    const log = await openLog({ engine });
    expect(reachable(log)).toEqual(LOG);
    await log.close();
  });

  it('no property path from a log, its keys or a projection reaches key material or a storage handle', async () => {
    const { log } = await tempLog({ masterKey: newMasterKey() });
    await log.append([action(['customer', 'alice'], [{ op: 'add', path: '/email', value: 'a@example.org' }], { encrypt: { key: ['customer', 'alice'] } })], { base: 0 });
    await log.keys.create(['customer', 'bob']);
    const projection = log.projection('p');
    await projection.catchUp();
    for (const root of [log, log.keys, projection]) {
      const found = values(root);
      expect(found.filter((v) => v instanceof Uint8Array)).toEqual([]);
      // Only the facade, its prototype and the methods on it: no engine, database, cache or ring.
      const objects = found.filter((v) => typeof v === 'object' && v !== null);
      // (compared by identity: printing a facade's prototype would call its getters on it)
      expect(objects.length === 2 && objects[0] === root && objects[1] === Object.getPrototypeOf(root)).toBe(true);
      const methods = Object.values(Object.getOwnPropertyDescriptors(Object.getPrototypeOf(root))).flatMap((d) => [d.value, d.get]);
      expect(found.filter((v) => typeof v === 'function' && !methods.includes(v))).toEqual([]);
    }
  });

  it('a command service, a process manager and a notifier show only their documented members, and nothing reachable on them leads to the log\'s internals', async () => {
    const { log } = await tempLog({ masterKey: newMasterKey() });
    const noop = decider<unknown>({ name: 'noop', aggregates: () => [['x', 1]], decide: () => [] });
    const commands = createCommandService(log, { deciders: [noop] });
    const manager = createProcessManager(log, 'p', { instance: () => undefined, init: () => ({}), react: (state) => ({ state }), commands });
    const notifier = createNotifier(log, 'n', { handle: async () => {} });
    expect(reachable(commands)).toEqual(['execute']);
    expect(reachable(manager)).toEqual(PROCESS_MANAGER);
    expect(reachable(notifier)).toEqual(NOTIFIER);
    await manager.catchUp();
    await notifier.catchUp();
    for (const root of [commands, manager, notifier]) {
      const found = values(root);
      const objects = found.filter((v) => typeof v === 'object' && v !== null);
      expect(objects.length === 2 && objects[0] === root && objects[1] === Object.getPrototypeOf(root)).toBe(true);
    }
  });
});
