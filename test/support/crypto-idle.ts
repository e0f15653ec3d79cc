/**
 * Child: opens the store with `autoExpire`, creates a key that expires in a day and encrypts a
 * value with it, says `ready`, then does nothing. Its timers must not keep it alive: it should
 * exit by itself at once. Arguments: path, master key (hex).
 */
import { openLog } from '../../src/index.ts';

const [path, masterKey] = process.argv.slice(2) as [string, string];
const log = await openLog({ path, masterKey, autoExpire: true });
await log.keys.create(['user', 'idle'], { ttl: { days: 1 } });
await log.append([{
  source: 'idle',
  action: { reason: 'sign up', actor: ['user', 'idle'], aggregate: ['user', 'idle'], patch: [{ op: 'add', path: '/email', value: 'idle@example.com' }] },
  encrypt: { key: ['user', 'idle'] },
}], { base: 0 });
console.log('ready');
