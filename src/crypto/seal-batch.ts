/**
 * Encryption of a batch on its way in: which values to encrypt, and the envelopes that replace them.
 */
import { pointerWithin } from '../model/json-pointer.ts';
import type { Identity } from '../model/types.ts';
import { identityKey, type PreparedAction, type PreparedEvent } from '../model/validate.ts';
import { drawNonces, sealValue, sealValueUnderAll } from './envelope.ts';
import { drawSalts } from './seal.ts';

/**
 * Whether an operation's value must be encrypted: its path equals or lies under one of `paths`,
 * or one of `paths` lies under it (the value contains what must be protected, so all of it is
 * encrypted). Every valued operation when `paths` is omitted.
 */
function mustEncrypt(path: string, paths: readonly string[] | undefined): boolean {
  if (paths === undefined) return true;
  for (const p of paths) if (pointerWithin(path, p) || pointerWithin(p, path)) return true;
  return false;
}

/** The indexes of the operations of `action` whose values get encrypted. */
function encryptedOperations(action: PreparedAction): number[] {
  const encrypt = action.encrypt;
  if (encrypt === undefined) return NOTHING;
  let indexes: number[] | undefined;
  const patch = action.patch;
  for (let i = 0; i < patch.length; i++) {
    const op = patch[i] as PreparedAction['patch'][number];
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && mustEncrypt(op.path, encrypt.paths)) (indexes ??= []).push(i);
  }
  return indexes ?? NOTHING;
}

const NOTHING: number[] = [];

/** The distinct keys a batch encrypts with. */
export function batchKeys(events: readonly PreparedEvent[]): readonly Identity[] {
  if (!events.some((event) => event.type === 'action' && event.encrypt !== undefined)) return NO_KEYS;
  const keys = new Map<string, Identity>();
  for (const event of events) if (event.type === 'action') for (const key of event.encrypt?.keys ?? []) keys.set(identityKey(key), key);
  return [...keys.values()];
}

const NO_KEYS: readonly Identity[] = Object.freeze([]);

/** The keys of an action in their stored order: as given for one, sorted for several. */
export function actionKeys(keys: readonly Identity[]): Identity[] {
  return keys.length === 1 ? [...keys] : [...keys].sort((a, b) => (identityKey(a) < identityKey(b) ? -1 : identityKey(a) > identityKey(b) ? 1 : 0));
}

/**
 * The values to store for each event of the batch: envelopes in place of the encrypted values,
 * `undefined` for an event with nothing to encrypt. Nonces for the whole batch come from one call.
 */
export function sealBatch(events: readonly PreparedEvent[], keys: ReadonlyMap<string, { key: Uint8Array }>): (unknown[] | undefined)[] {
  const plans = events.map((event) => (event.type === 'action' ? encryptedOperations(event) : NOTHING));
  let count = 0;
  for (const plan of plans) count += plan.length;
  const nonces = drawNonces(count);
  let drawn = 0;
  return events.map((event, e) => {
    const plan = plans[e] as number[];
    if (event.type !== 'action' || event.encrypt === undefined || plan.length === 0) return undefined;
    const patch = event.patch;
    const values: unknown[] = patch.map((op) => ('value' in op ? op.value : undefined));
    const given = event.encrypt.keys;
    if (given.length === 1) {
      const keyId = given[0] as Identity;
      const material = (keys.get(identityKey(keyId)) as { key: Uint8Array }).key;
      for (const i of plan) {
        const op = patch[i] as { path: string; value: unknown };
        values[i] = sealValue(op.value, material, keyId, event.aggregate, op.path, nonces, drawn++);
      }
      return values;
    }
    const keyIds = actionKeys(given);
    const materials = keyIds.map((id) => (keys.get(identityKey(id)) as { key: Uint8Array }).key);
    const salts = drawSalts(plan.length);
    plan.forEach((i, n) => {
      const op = patch[i] as { path: string; value: unknown };
      values[i] = sealValueUnderAll(op.value, materials, keyIds, event.aggregate, op.path, salts[n] as Buffer);
    });
    return values;
  });
}
