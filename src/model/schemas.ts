/**
 * Schema versions per aggregate kind (`openLog({ schemas })`): what each action records when it
 * is appended, and the upcasters that lift older actions to the current version for readers.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.ts';
import { describe } from './json-pointer.ts';
import type { Action } from './types.ts';
import { isPlainObject } from './validate.ts';

/** How actions of one kind evolved: `upcasters[i]` lifts version `i + 1` to `i + 2`. */
export interface KindSchema {
  version: number;
  upcasters: ((action: Action) => Action)[];
}

/** A validated schema, with the fingerprint that tells snapshots whether it changed. */
export interface PreparedSchema {
  version: number;
  upcasters: readonly ((action: Action) => Action)[];
  /** Changes whenever the version or any upcaster's source does. */
  fingerprint: string;
}

export type Schemas = ReadonlyMap<string, PreparedSchema>;

/** The fingerprint of a kind without a schema: version 1, nothing to lift. */
export const NO_SCHEMA_FINGERPRINT = '1';

/**
 * Checks `openLog`'s `schemas`: a version (a positive integer) and exactly `version - 1`
 * upcasters per kind.
 * @throws InvalidArgumentError naming the kind and what is wrong.
 */
export function prepareSchemas(value: unknown): Schemas {
  const schemas = new Map<string, PreparedSchema>();
  if (value === undefined) return schemas;
  if (!isPlainObject(value)) throw new InvalidArgumentError(`options.schemas: expected { [kind]: { version, upcasters } }, got ${describe(value)}`);
  for (const [kind, schema] of Object.entries(value)) {
    const where = `options.schemas[${JSON.stringify(kind)}]`;
    if (kind.length === 0) throw new InvalidArgumentError('options.schemas: expected non-empty kinds, got ""');
    if (!isPlainObject(schema)) throw new InvalidArgumentError(`${where}: expected { version, upcasters }, got ${describe(schema)}`);
    const { version, upcasters } = schema;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      throw new InvalidArgumentError(`${where}.version: expected an integer >= 1, got ${describe(version)}`);
    }
    if (!Array.isArray(upcasters) || upcasters.some((u) => typeof u !== 'function')) {
      throw new InvalidArgumentError(`${where}.upcasters: expected an array of functions, got ${describe(upcasters)}`);
    }
    if (upcasters.length !== version - 1) {
      throw new InvalidArgumentError(`${where}.upcasters: expected ${version - 1} upcaster(s) for version ${version} (upcasters[i] lifts version i + 1 to i + 2), got ${upcasters.length}`);
    }
    const fingerprint = version === 1 ? NO_SCHEMA_FINGERPRINT : createHash('sha256').update(`${version}\u0000${upcasters.map(String).join('\u0000')}`).digest('base64url').slice(0, 22);
    schemas.set(kind, { version, upcasters: [...upcasters] as ((action: Action) => Action)[], fingerprint });
  }
  return schemas;
}

/** The current version of `kind`'s actions. */
export function versionOf(schemas: Schemas, kind: string): number {
  return schemas.get(kind)?.version ?? 1;
}
