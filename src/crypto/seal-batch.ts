/**
 * Encryption of a batch on its way in: which values to encrypt, and the envelopes that replace them.
 */
import { parsePointer } from '../model/json-pointer.ts';
import type { Identity } from '../model/types.ts';
import { identityKey, type PreparedAction, type PreparedEvent } from '../model/validate.ts';
import { drawNonces, sealValue, sealValueUnderAll } from './envelope.ts';
import { drawSalts } from './seal.ts';

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) return false;
  return true;
}

/**
 * Whether an operation's value must be encrypted: its path equals or lies under one of `paths`,
 * or one of `paths` lies under it (the value contains what must be protected, so all of it is
 * encrypted). Every valued operation when `paths` is omitted.
 */
function mustEncrypt(path: string, paths: readonly string[][] | undefined): boolean {
  if (paths === undefined) return true;
  const segments = parsePointer(path) as string[];
  return paths.some((p) => startsWith(segments, p) || startsWith(p, segments));
}

/** The indexes of the operations of `action` whose values get encrypted. */
function encryptedOperations(action: PreparedAction): number[] {
  const encrypt = action.encrypt;
  if (encrypt === undefined) return [];
  const indexes: number[] = [];
  action.patch.forEach((op, i) => {
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && mustEncrypt(op.path, encrypt.paths)) indexes.push(i);
  });
  return indexes;
}

/** The distinct keys a batch encrypts with. */
export function batchKeys(events: readonly PreparedEvent[]): Identity[] {
  const keys = new Map<string, Identity>();
  for (const event of events) if (event.type === 'action') for (const key of event.encrypt?.keys ?? []) keys.set(identityKey(key), key);
  return [...keys.values()];
}

/** The keys of an action in their stored order: as given for one, sorted for several. */
export function actionKeys(keys: readonly Identity[]): Identity[] {
  return keys.length === 1 ? [...keys] : [...keys].sort((a, b) => (identityKey(a) < identityKey(b) ? -1 : identityKey(a) > identityKey(b) ? 1 : 0));
}

/**
 * The values to store for each event of the batch: envelopes in place of the encrypted values,
 * `undefined` for an event with nothing to encrypt. Nonces for the whole batch come from one call.
 */
export function sealBatch(events: readonly PreparedEvent[], keys: ReadonlyMap<string, { key: Uint8Array }>): (unknown[] | undefined)[] {
  const plans = events.map((event) => (event.type === 'action' ? encryptedOperations(event) : []));
  const nonces = drawNonces(plans.reduce((n, plan) => n + plan.length, 0));
  let drawn = 0;
  return events.map((event, e) => {
    const plan = plans[e] as number[];
    if (event.type !== 'action' || event.encrypt === undefined || plan.length === 0) return undefined;
    const keyIds = actionKeys(event.encrypt.keys);
    const materials = keyIds.map((id) => (keys.get(identityKey(id)) as { key: Uint8Array }).key);
    const salts = keyIds.length === 1 ? [] : drawSalts(plan.length);
    const values: unknown[] = event.patch.map((op) => ('value' in op ? op.value : undefined));
    plan.forEach((i, n) => {
      const op = event.patch[i] as { path: string; value: unknown };
      values[i] = keyIds.length === 1
        ? sealValue(op.value, materials[0] as Uint8Array, keyIds[0] as Identity, event.aggregate, op.path, nonces, drawn++)
        : sealValueUnderAll(op.value, materials, keyIds, event.aggregate, op.path, salts[n] as Buffer);
    });
    return values;
  });
}
