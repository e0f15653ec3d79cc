/**
 * An aggregate's state: the fold of its actions, from `{}`, at a head; from the fold this log kept
 * of it at an earlier head (log/fold-cache.ts), or from its latest snapshot when the log keeps
 * snapshots (`openLog({ snapshots: { every } })`).
 *
 * A snapshot is taken by the read that brings the actions past the latest one to `every` or more
 * (whether it folded them all, or resumed a kept fold that had folded the others): the
 * state as of the head that read saw, sealed like a projection state under the keys whose
 * plaintext is in it (log/sealed.ts), with the fingerprint of the kind's schema so that a changed
 * version or upcaster list leaves it unused. The engine refuses it if an effect affecting the
 * aggregate came after that head, and removes it in the transaction of any later such effect.
 */
import { applyPatchAtomic } from '../model/fold.ts';
import { NO_SCHEMA_FINGERPRINT } from '../model/schemas.ts';
import type { Identity, LogEvent } from '../model/types.ts';
import { identityKey } from '../model/validate.ts';
import { copyOf, type HeldFold } from './fold-cache.ts';
import type { LogCore } from './log-core.ts';
import { actionSeqs, loadPages } from './read.ts';
import { noteDecrypted, type DecryptedWith } from './reveal.ts';
import { decodeDerived, encodeDerived } from './sealed.ts';

/** What sealed snapshots are bound to (their owner in the associated data). */
const SNAPSHOT_OWNER = '$snapshot';

interface Snapshot {
  /** The schema fingerprint of the aggregate's kind when it was taken. */
  f: string;
  state: unknown;
}

/** An aggregate's fold at a head, with the keys whose plaintext went into it. */
export interface Folded {
  state: unknown;
  /** Every key an action folded into the state was decrypted with (none that is gone: its values were redacted). */
  keys: Identity[];
  /** Whether the aggregate has any action up to that head. */
  exists: boolean;
}

/**
 * The fold of an aggregate's actions up to `head` (exactly the fold at that head), with its keys:
 * from the fold this log holds of it at an earlier head (log/fold-cache.ts), otherwise from its
 * snapshot or its first action. The state is the caller's own: nothing held shares an object or
 * array with it.
 */
export async function foldAt(core: LogCore, aggregate: Identity, head: number): Promise<Folded> {
  const held = core.folds.before(aggregate, head);
  if (held !== undefined) {
    const resumed = await resume(core, aggregate, held, head);
    if (resumed !== undefined) return resumed;
  }
  const { pastSnapshot, ...folded } = await foldFromStart(core, aggregate, head);
  if (folded.keys.length === 0) core.folds.hold(aggregate, { at: head, state: folded.state, exists: folded.exists, pastSnapshot });
  return folded;
}

/**
 * `held` brought up to `head`: its aggregate's actions after it folded on; undefined (and it is
 * let go) when one of them decrypted a value, since such a fold is not held (see FoldCache).
 * Effects after it need no look: an effect only takes away plaintext under the key it destroys,
 * and a held fold has none (a value whose key was gone already is redacted in it for good).
 */
async function resume(core: LogCore, aggregate: Identity, held: HeldFold, head: number): Promise<Folded | undefined> {
  let state = copyOf(held.state);
  if (held.at === head) return { state, keys: [], exists: held.exists };
  let exists = held.exists;
  let pastSnapshot = held.pastSnapshot;
  for await (const { events, decrypted } of loadPages(core, await actionSeqs(core, aggregate, held.at + 1, head + 1), 'plain')) {
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as LogEvent;
      if (!('action' in event)) continue;
      if ((decrypted[i] as DecryptedWith).keys.length > 0) return letGo(core, aggregate);
      state = applyPatchAtomic(state, event.action.patch);
      exists = true;
      pastSnapshot++;
    }
  }
  // The rule of snapshots holds across reads that resume: once `every` actions are past the
  // latest snapshot, the read that folded the last of them takes the next.
  const every = core.settings.snapshotEvery;
  if (every !== undefined && pastSnapshot >= every) {
    await takeSnapshot(core, aggregate, head, state, []);
    pastSnapshot = 0;
  }
  core.folds.hold(aggregate, { at: head, state, exists, pastSnapshot });
  return { state, keys: [], exists };
}

/** Lets go of a held fold that cannot be brought up to date: the caller folds from the start. */
function letGo(core: LogCore, aggregate: Identity): undefined {
  core.folds.drop(aggregate);
  return undefined;
}

/**
 * The fold of an aggregate's actions up to `head`, from its snapshot or its first action, and how
 * many actions it holds past the latest snapshot (0 when it took one).
 */
async function foldFromStart(core: LogCore, aggregate: Identity, head: number): Promise<Folded & { pastSnapshot: number }> {
  const every = core.settings.snapshotEvery;
  let state: unknown = {};
  let from = 1;
  let exists = false;
  const keys = new Map<string, Identity>();
  if (every !== undefined) {
    const stored = await core.storage.snapshot(aggregate, head);
    const [opened] = stored === undefined ? [undefined] : await decodeDerived(core, SNAPSHOT_OWNER, [{ aggregate, bytes: stored.value }]);
    const snapshot = opened?.value as Snapshot | undefined;
    if (stored !== undefined && opened !== undefined && snapshot?.f === fingerprintOf(core, aggregate)) {
      state = snapshot.state;
      from = stored.seq + 1;
      exists = true;
      for (const key of opened.keys) keys.set(identityKey(key), key);
    }
  }
  const seqs = await actionSeqs(core, aggregate, from, head + 1);
  for await (const { events, decrypted } of loadPages(core, seqs, 'plain')) {
    events.forEach((event, i) => {
      if (!('action' in event)) return;
      state = applyPatchAtomic(state, event.action.patch);
      exists = true;
      noteDecrypted(keys, decrypted[i] as DecryptedWith);
    });
  }
  const taking = every !== undefined && seqs.length >= every;
  if (taking) await takeSnapshot(core, aggregate, head, state, [...keys.values()]);
  return { state, keys: [...keys.values()], exists, pastSnapshot: taking ? 0 : seqs.length };
}

/** Stores `state`, the aggregate's fold at `head`, as its snapshot, sealed under `keys`. */
async function takeSnapshot(core: LogCore, aggregate: Identity, head: number, state: unknown, keys: Identity[]): Promise<void> {
  const [value] = encodeDerived(core, SNAPSHOT_OWNER, [{ aggregate, value: { f: fingerprintOf(core, aggregate), state } satisfies Snapshot, keys }]);
  await core.storage.putSnapshot(aggregate, head, value as Uint8Array);
}

/** The schema fingerprint of the aggregate's kind, which a snapshot is bound to. */
function fingerprintOf(core: LogCore, aggregate: Identity): string {
  return core.schemas.get(aggregate[0])?.fingerprint ?? NO_SCHEMA_FINGERPRINT;
}

/** The aggregate's fold and the head it was read at: the natural base of the next append. */
export async function stateOf(core: LogCore, aggregate: Identity): Promise<{ state: unknown; head: number }> {
  const { states, head } = await statesAt(core, [aggregate]);
  return { state: states[0], head };
}

/**
 * The folds of several aggregates, all at one head (read once, bounding every fold, unless the
 * caller gives the head it read): a view in which they agree, as a decider needs.
 */
export async function statesAt(core: LogCore, aggregates: readonly Identity[], at?: number): Promise<{ states: unknown[]; head: number }> {
  core.assertOpen();
  const head = at ?? (await core.storage.head());
  return { states: await Promise.all(aggregates.map(async (aggregate) => (await foldAt(core, aggregate, head)).state)), head };
}
