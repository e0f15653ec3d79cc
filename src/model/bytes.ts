/**
 * Comparing stored bytes: the compare-and-set of consumer records (projections, notifiers) and
 * the LMDB engine's check that the last record it wrote is still the store's.
 */

/**
 * Whether `a` and `b` hold the same bytes, or are both undefined. `a` may be what lmdb-js's
 * `getBinaryFast` returns: its shared buffer, whose `length` is set to the value's while its
 * `byteLength` is the whole buffer's, so only `length` bytes of it are compared.
 * @example
 * sameBytes(Uint8Array.of(1, 2), Buffer.from([1, 2])); // true
 * sameBytes(undefined, Uint8Array.of()); // false
 */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
