/**
 * compact(): rewrites the store entry by entry into a fresh file, so that nothing a shred
 * destroyed (wrapped key records, old projection states) survives in the store's files.
 *
 * A logical copy rather than LMDB's compacting page copy (mdb_env_copy2 with MDB_CP_COMPACT):
 * that one drops free pages but copies live pages whole, and a live page can still hold the
 * bytes of a record deleted from it in its unused middle. A fresh file written entry by entry
 * holds only the entries live now.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StoreInUseError } from '../../errors.ts';
import { databases, openStore, type Store } from './layout.ts';

const TEMP_PREFIX = 'compact-';
const ENTRIES_PER_TRANSACTION = 10_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Other live processes holding a slot in the store's reader table, i.e. with the store open. */
export function otherProcesses(store: Store): number[] {
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

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies every entry of `store` into a new store in a temporary directory, then closes `store`
 * and renames the copy over its `data.mdb`. A crash before the rename leaves the old file as it
 * was (the copy is removed at the next compaction, by any process); the rename is atomic. The caller
 * must keep its own writes out meanwhile, and reopens the store afterwards.
 */
export async function compactStore(store: Store, path: string, onProgress?: (copied: number, total: number) => void): Promise<void> {
  // Copies left by compactions that were killed hold old entries (wrapped keys among them).
  for (const name of readdirSync(path)) if (name.startsWith(TEMP_PREFIX)) rmSync(join(path, name), { recursive: true, force: true });
  const temp = join(path, `${TEMP_PREFIX}${process.pid}`);
  let closed = false;
  try {
    const copy = openStore(temp);
    try {
      let copied = 0;
      const total = databases(store).reduce((n, [, db]) => n + db.getCount(), 0);
      for (const [name, source] of databases(store)) {
        const target = databases(copy).find(([n]) => n === name)?.[1];
        if (target === undefined) throw new Error(`compact: no database ${name} in the copy`);
        const entries = source.getRange({ snapshot: true })[Symbol.iterator]();
        for (let done = false; !done; ) {
          await copy.root.transaction(() => {
            for (let n = 0; n < ENTRIES_PER_TRANSACTION; n++) {
              const next = entries.next();
              if (next.done === true) { done = true; return; }
              target.put(next.value.key, next.value.value);
              copied++;
            }
          });
          onProgress?.(copied, total);
        }
      }
      await copy.root.flushed;
    } finally {
      await copy.root.close();
    }
    fsyncPath(join(temp, 'data.mdb'));
    await store.root.close();
    closed = true;
    renameSync(join(temp, 'data.mdb'), join(path, 'data.mdb'));
    fsyncPath(path);
  } finally {
    rmSync(temp, { recursive: true, force: true });
    if (!closed) await store.root.close();
  }
}
