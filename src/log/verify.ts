/**
 * verify(): the hash chain from seq 1, and (through the engine) that every index holds exactly
 * the entries the events imply.
 */
import type { VerifyResult } from '../model/types.ts';
import type { IndexFacts } from '../storage/engine.ts';
import type { LogCore } from './log-core.ts';
import { carriesExpectedHash, decodeBody, extrasOf, GENESIS_HASH, recordHash, type Body } from './record.ts';

/** The first problem found: ends the walk. */
class Bad {
  constructor(readonly seq: number, readonly reason: string) {}
}

function factsOfBody(seq: number, body: Body): IndexFacts {
  const facts: IndexFacts = body[0] === 0 ? { type: 'action', aggregate: body[5], triggers: body[7] } : { type: 'effect', trigger: body[4] };
  const keyed = extrasOf(body).i;
  if (keyed !== undefined) facts.idempotency = { key: keyed[0], last: seq + keyed[1] - 1 };
  return facts;
}

/**
 * Walks the log up to the head it starts at (appends made meanwhile are left for the next run),
 * stopping at the first problem, so the seq it names is the first bad one.
 */
export async function verifyLog(core: LogCore, onProgress?: (seq: number, head: number) => void): Promise<VerifyResult> {
  core.assertOpen();
  const head = await core.storage.head();
  let expected = 1;
  let previousHash: Uint8Array = GENESIS_HASH;
  const inspect = (seq: number, record: Uint8Array): IndexFacts => {
    if (seq !== expected) throw new Bad(expected, `expected event ${expected}, found ${seq} next: the sequence has a gap`);
    expected++;
    if (!carriesExpectedHash(record, previousHash)) {
      throw new Bad(seq, 'the hash does not match the previous hash and the stored bytes');
    }
    previousHash = recordHash(record);
    try {
      return factsOfBody(seq, decodeBody(record, seq));
    } catch (e) {
      throw new Bad(seq, (e as Error).message);
    }
  };
  const factsOf = (seq: number, record: Uint8Array): IndexFacts | undefined => {
    try {
      return factsOfBody(seq, decodeBody(record, seq));
    } catch {
      return undefined;
    }
  };
  try {
    const progress = onProgress === undefined ? undefined : (seq: number) => onProgress(seq, head);
    const problem = await core.storage.verify(head, { inspect, factsOf, ...(progress === undefined ? {} : { onProgress: progress }) });
    if (problem !== undefined) return { ok: false, ...problem };
    onProgress?.(expected - 1, head);
    return { ok: true, events: expected - 1 };
  } catch (e) {
    if (e instanceof Bad) return { ok: false, seq: e.seq, reason: e.reason };
    throw e;
  }
}
