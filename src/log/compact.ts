/**
 * compact(): rewrites the store without free pages, so that nothing a shred destroyed (wrapped
 * key records, old pages of projection states) survives in the store's files.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StoreInUseError } from '../errors.ts';
import type { Store } from './store.ts';

const TEMP_PREFIX = 'compact-';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Other live processes holding a slot in the store's reader table, i.e. with the store open. */
function otherProcesses(store: Store): number[] {
  const pids = new Set<number>();
  for (const line of store.root.readerList().split('\n').slice(1)) {
    const pid = Number.parseInt(line.trim().split(/\s+/)[0] ?? '', 10);
    if (Number.isSafeInteger(pid) && pid !== process.pid && isAlive(pid)) pids.add(pid);
  }
  return [...pids];
}

/**
 * Compaction needs the store to itself: another process writing during the copy would lose its
 * writes at the rename, and one reading would keep the old file mapped.
 * @throws StoreInUseError while another process has the store open.
 */
export function assertAlone(store: Store, path: string): void {
  const others = otherProcesses(store);
  if (others.length > 0) {
    throw new StoreInUseError(`compact: expected no other process to have ${path} open, got process ${others.join(', ')}; close them first`);
  }
}

/**
 * Copies the live pages of `store` into a temporary file, then closes the store and renames the
 * copy over `data.mdb`. A crash before the rename leaves the old file as it was (the copy is
 * removed at the next compaction); the rename itself is atomic. The caller reopens the store.
 */
export async function compactStore(store: Store, path: string): Promise<void> {
  const temp = join(path, `${TEMP_PREFIX}${process.pid}`);
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(temp);
  let closed = false;
  try {
    await store.root.committed;
    await store.root.backup(temp, true);
    const copy = join(temp, 'data.mdb');
    const fd = openSync(copy, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await store.root.close();
    closed = true;
    renameSync(copy, join(path, 'data.mdb'));
    const dir = openSync(path, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } finally {
    rmSync(temp, { recursive: true, force: true });
    if (!closed) await store.root.close();
  }
}
