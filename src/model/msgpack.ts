/**
 * The one msgpack encoding every stored byte goes through (records, envelopes' plaintext, key
 * records, index values, projection states), so the same value always has the same bytes.
 */
import { Packr } from 'msgpackr';

/** msgpack without record extensions, so the bytes are self-describing and stable. */
export const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, copyBuffers: true });
