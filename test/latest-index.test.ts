/**
 * The LMDB engine's `latest` index (the last seq that touched each aggregate) lets an append with
 * nothing to conflict skip the index scans. It must never hide a conflict: on a store upgraded
 * from 0.1.0, history from before the index falls back to the scans; and verify() treats a wrong
 * entry as corruption.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Key } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { openLog } from '../src/index.ts';
import { action, tempDir, tempLog } from './support/temp-log.ts';

const FIXTURE = new URL('./fixtures/store-0.1.0/data.mdb', import.meta.url).pathname;

async function setLatest(path: string, aggregate: [string, string | number], seq: number): Promise<void> {
  const root = open({ path, maxDbs: 16 });
  const latest = root.openDB<Buffer, Key>({ name: 'latest', encoding: 'binary' });
  const value = Buffer.alloc(8);
  value.writeDoubleBE(seq);
  await root.transaction(() => latest.put(aggregate, value));
  await root.close();
}

describe('the latest-seq index', () => {
  it('finds, on a store upgraded from 0.1.0, conflicts with history written before the index existed', async () => {
    const path = join(tempDir(), 'store');
    mkdirSync(path);
    copyFileSync(FIXTURE, join(path, 'data.mdb'));
    const log = await openLog({ path });
    // seqs 1 and 2 changed the book under 0.1.0; a view based on 1 runs into 2.
    const result = await log.append([action(['book', 'Neuromancer'], [{ op: 'replace', path: '/stock', value: 9 }])], { base: 1 });
    expect(result).toMatchObject({ status: 'conflict', conflicts: [{ theirs: { seq: 2 } }] });
    expect((await log.append([action(['book', 'Neuromancer'], [{ op: 'replace', path: '/stock', value: 9 }])], { base: 5 })).status).toBe('ok');
    // Once written under 0.2, the aggregate has its entry: the next stale view still conflicts.
    expect(await log.append([action(['book', 'Neuromancer'], [{ op: 'replace', path: '/stock', value: 1 }])], { base: 5 })).toMatchObject({ status: 'conflict', conflicts: [{ theirs: { seq: 6 } }] });
    expect(await log.verify()).toEqual({ ok: true, events: 6 });
    await log.close();
  });

  it('is checked by verify: an entry lower than the last seq that touched its aggregate is corruption', async () => {
    const { log, path } = await tempLog();
    for (let i = 0; i < 3; i++) await log.append([action(['book', 'a'], [{ op: 'add', path: `/v${i}`, value: i }])], { base: i });
    await log.append([action(['book', 'b'], [{ op: 'add', path: '/v', value: 1 }])], { base: 3 });
    expect(await log.verify()).toEqual({ ok: true, events: 4 });
    await log.close();
    await setLatest(path, ['book', 'a'], 1);
    const reopened = await openLog({ path });
    expect(await reopened.verify()).toEqual({ ok: false, seq: 3, reason: 'the latest-seq index disagrees with the events' });
    await reopened.close();
    await setLatest(path, ['book', 'a'], 3);
    await setLatest(path, ['book', 'nobody'], 2);
    const again = await openLog({ path });
    expect(await again.verify()).toEqual({ ok: false, seq: 2, reason: 'the latest-seq index disagrees with the events' });
    await again.close();
  });
});
