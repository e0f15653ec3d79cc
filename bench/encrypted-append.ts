/**
 * Append of 1000 events per call with one encrypted 32-byte field each, against the same append
 * without encryption, in the same run. Target (issue 14): encrypted >= 0.6x plain (issue 3's was 0.5x).
 *
 * Each round appends the same events to three fresh stores, one call of 1000 awaited after the
 * other (base = head), in an order that rotates round by round so the machine's other load
 * hits all alike:
 *   - plain: the workload of bench/encryption-support.ts without `encrypt`;
 *   - encrypted: `/email` encrypted with the key of the event's aggregate (one key per subject;
 *     1000 aggregates round-robin, so every call uses 1000 keys, created by the first call);
 *   - one-key (context): `/email` encrypted with one key for every event.
 * `ratio` is the median over rounds of encrypted/plain within a round. For context it prints
 * the cost per XChaCha20-Poly1305 call on this machine, and what the cipher alone
 * would cost per event next to the plain append's time per event.
 */
import { loadavg } from 'node:os';
import { activeCipher } from '../src/crypto/aead.ts';
import { randomBytes } from 'node:crypto';
import type { NewAction } from '../src/index.ts';
import { batchKeys, sealBatch } from '../src/crypto/seal-batch.ts';
import { identityKey, prepareEvents } from '../src/model/validate.ts';
import { cipherMicros, openKeyedLog, runIfMain, workloadAction } from './encryption-support.ts';
import { assertOk, emit, median, note, now, patchBytes, round, type Bench, type BenchContext } from './support.ts';

const TARGET = 0.6;
const BATCH = 1000;
const ROUNDS = 4;
const AGGREGATES = 1000;

type Variant = 'plain' | 'encrypted' | 'oneKey';

function events(count: number, variant: Variant): NewAction[][] {
  const batches: NewAction[][] = [];
  for (let i = 0; i < count; i += BATCH) {
    const batch: NewAction[] = [];
    for (let k = i; k < Math.min(count, i + BATCH); k++) {
      batch.push(workloadAction(k, {
        aggregates: AGGREGATES,
        encrypted: variant !== 'plain',
        ...(variant === 'oneKey' ? { key: ['tenant', 'one'] as const } : {}),
      }));
    }
    batches.push(batch);
  }
  return batches;
}

/** Appends `batches` to a fresh store, awaited one by one; events/s. */
async function appendRound(context: BenchContext, batches: readonly NewAction[][]): Promise<number> {
  const dir = context.tempDir();
  const log = await openKeyedLog(dir);
  let head = 0;
  const started = now();
  for (const batch of batches) {
    assertOk(await log.append(batch, { base: head }), 'an append');
    head += batch.length;
  }
  const seconds = (now() - started) / 1000;
  await log.close();
  context.remove(dir);
  return head / seconds;
}

/**
 * Microseconds per event of `sealBatch` alone (choosing the values, drawing nonces, encrypting,
 * building envelopes) on calls of 1000 prepared events, keys in hand: the encryption step of
 * an append without the key ring and the write.
 */
function sealMicros(batches: readonly NewAction[][]): number {
  const prepared = batches.map((batch) => prepareEvents(batch, Date.now()));
  const keys = new Map<string, { key: Uint8Array }>();
  for (const batch of prepared) for (const id of batchKeys(batch)) keys.set(identityKey(id), { key: Uint8Array.from(randomBytes(32)) });
  let events = 0;
  for (const batch of prepared.slice(0, 3)) sealBatch(batch, keys);
  const started = now();
  for (const batch of prepared) {
    sealBatch(batch, keys);
    events += batch.length;
  }
  return ((now() - started) * 1000) / events;
}

export const encryptedAppend: Bench = {
  name: 'encrypted-append',
  description: 'append of 1000 events/call, one encrypted 32-byte field each, vs the same append without encryption',
  async run(context) {
    const count = Math.ceil(context.scaled(50_000, 10 * BATCH) / BATCH) * BATCH;
    const workloads: Record<Variant, NewAction[][]> = { plain: events(count, 'plain'), encrypted: events(count, 'encrypted'), oneKey: events(count, 'oneKey') };
    const order: Variant[] = ['plain', 'encrypted', 'oneKey'];

    note('encrypted-append: warm-up');
    for (const variant of order) await appendRound(context, workloads[variant].slice(0, Math.max(2, workloads[variant].length / 10)));

    const perS: Record<Variant, number[]> = { plain: [], encrypted: [], oneKey: [] };
    const ratios: number[] = [];
    const oneKeyRatios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      note(`encrypted-append: round ${r + 1}/${ROUNDS}`);
      const got: Partial<Record<Variant, number>> = {};
      for (let k = 0; k < order.length; k++) {
        const variant = order[(r + k) % order.length] as Variant;
        got[variant] = await appendRound(context, workloads[variant]);
      }
      for (const variant of order) perS[variant].push(got[variant] as number);
      ratios.push((got.encrypted as number) / (got.plain as number));
      oneKeyRatios.push((got.oneKey as number) / (got.plain as number));
    }
    const cipher = await cipherMicros();
    const seal = sealMicros(workloads.encrypted);
    const ratio = median(ratios);
    const plainPerS = median(perS.plain);
    emit({
      bench: 'encrypted-append',
      events: count,
      batch: BATCH,
      aggregates: AGGREGATES,
      keys_per_call: Math.min(BATCH, AGGREGATES),
      patch_bytes: patchBytes((workloads.plain[0] as NewAction[])[0] as NewAction),
      rounds: ROUNDS,
      encrypted_per_s: round(median(perS.encrypted)),
      plain_per_s: round(plainPerS),
      ratio: round(ratio, 3),
      encrypted_rounds: perS.encrypted.map((x) => round(x)),
      plain_rounds: perS.plain.map((x) => round(x)),
      one_key_per_s: round(median(perS.oneKey)),
      one_key_ratio: round(median(oneKeyRatios), 3),
      plain_us_per_event: round(1e6 / plainPerS, 1),
      encrypted_us_per_event: round(1e6 / median(perS.encrypted), 1),
      seal_batch_us_per_event: round(seal, 1),
      cipher_encrypt_us_per_call: cipher.encrypt_us,
      cipher: activeCipher(),
      load1: round(loadavg()[0] as number, 2),
      target: `>=${TARGET}x the same append without encryption`,
      met: ratio >= TARGET,
    });
  },
};

runIfMain(import.meta.url, [encryptedAppend]);
