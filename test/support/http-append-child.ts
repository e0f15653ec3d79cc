/**
 * Another process writing to the store a gateway serves, for test/http-events.test.ts: opens the
 * LMDB store at <path>, appends one action on ['doc', <id>] with <text> at /text, prints its seq
 * and exits.
 *
 * Usage: node --import tsx http-append-child.ts <path> <id> <text>
 */
import { openLog } from '../../src/index.ts';

const [path, id, text] = process.argv.slice(2);
if (path === undefined || id === undefined || text === undefined) throw new Error('usage: http-append-child.ts <path> <id> <text>');
const log = await openLog({ path });
const result = await log.append([{ source: `child-${process.pid}`, action: { reason: 'typed', actor: ['user', 'child'], aggregate: ['doc', id], patch: [{ op: 'add', path: '/text', value: text }] } }], { base: await log.head() });
if (result.status !== 'ok') throw new Error(`append: ${result.status}`);
process.stdout.write(`${result.events[0]?.seq}\n`);
await log.close();
