/**
 * Values written into SQL text, for the statements of a write group: sent as simple-protocol
 * queries, several statements in one round trip (BEGIN, the lock, the head and the view; the
 * inserts and COMMIT), where parameters cannot go. Only bytes (as hex), safe integers and
 * strings of our own making are ever written this way, each in a form that cannot end the
 * literal it is in, so no value can change the statement.
 */

/** A bytea literal: `E'\\x…'::bytea` (the E form reads the same whatever standard_conforming_strings says). */
export function byteaLiteral(bytes: Buffer | null): string {
  return bytes === null ? 'NULL' : `E'\\\\x${bytes.toString('hex')}'`;
}

/** A bytea[] literal. */
export function byteaArray(list: readonly (Buffer | null)[]): string {
  return list.length === 0 ? `'{}'::bytea[]` : `ARRAY[${list.map(byteaLiteral).join(',')}]::bytea[]`;
}

/** A bigint[] literal of safe integers (or nulls). */
export function bigintArray(list: readonly (number | null)[]): string {
  if (list.length === 0) return `'{}'::bigint[]`;
  return `ARRAY[${list.map((n) => (n === null ? 'NULL' : String(integer(n)))).join(',')}]::bigint[]`;
}

/** A safe integer, checked, for SQL text. */
export function integer(n: number): number {
  if (!Number.isSafeInteger(n)) throw new Error(`postgres engine: expected a safe integer, got ${n}`);
  return n;
}

/** A text literal of a string of our own making (quotes doubled; no backslash escapes apply). */
export function textLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
