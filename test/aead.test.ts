/**
 * The two AEADs, each in both of its implementations (libsodium's, and node's ChaCha20-Poly1305
 * until libsodium has loaded), against @noble/ciphers: XChaCha20-Poly1305, which every stored
 * value and wrapped key was written with, and ChaCha20-Poly1305 (RFC 8439), which sealed states
 * were written with. The same bytes for any key, nonce, associated data and plaintext, each
 * opening what the other sealed, and any change to the sealed bytes, the nonce or the associated
 * data refused. And libsodium's memory keeps neither key nor plaintext.
 */
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  activeCipher, chachaOpenWith, chachaSeal, loadFastCipher, nodeChacha20, nodeXchacha, sodiumCipher, xchachaOpen, xchachaOpenWith, xchachaSeal, type Cipher, type Sodium,
} from '../src/crypto/aead.ts';

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });

const activeXchacha: Cipher = { seal: xchachaSeal, open: xchachaOpen, openWith: xchachaOpenWith, wipe: () => {} };
// ChaCha20-Poly1305 is only ever opened to be decoded at once: its `open` here copies out of openWith.
const activeChacha: Cipher = {
  seal: chachaSeal,
  open: (key, nonce, ad, sealed) => chachaOpenWith(key, nonce, ad, sealed, (bytes, start, end) => Buffer.from(bytes.subarray(start, end))),
  openWith: chachaOpenWith,
  wipe: () => {},
};

const cases = [
  ['XChaCha20-Poly1305 from libsodium (once loaded)', activeXchacha, xchacha20poly1305, 24],
  ['XChaCha20-Poly1305 from HChaCha20 + node', nodeXchacha, xchacha20poly1305, 24],
  ['ChaCha20-Poly1305 from libsodium (once loaded)', activeChacha, chacha20poly1305, 12],
  ['ChaCha20-Poly1305 from node', nodeChacha20, chacha20poly1305, 12],
] as const;

describe.each(cases)('%s', (_, cipher, noble, nonceBytes) => {
  const input = fc.record({ key: bytes(32), nonce: bytes(nonceBytes), ad: fc.uint8Array({ maxLength: 80 }), plaintext: fc.uint8Array({ maxLength: 300 }) });

  it('seals to the bytes @noble/ciphers seals to, and each opens what the other sealed', async () => {
    await loadFastCipher();
    if (cipher === activeXchacha || cipher === activeChacha) expect(activeCipher()).toBe('libsodium');
    fc.assert(
      fc.property(input, ({ key, nonce, ad, plaintext }) => {
        const ours = cipher.seal(key, nonce, ad, plaintext);
        const theirs = noble(key, nonce, ad).encrypt(plaintext);
        expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
        expect(Buffer.from(cipher.open(key, nonce, ad, theirs)).equals(Buffer.from(plaintext))).toBe(true);
        expect(Buffer.from(noble(key, nonce, ad).decrypt(ours)).equals(Buffer.from(plaintext))).toBe(true);
        // Associated data given as a string is authenticated as its UTF-8 bytes.
        const text = `coherence/value/v1\u0000${Buffer.from(ad).toString('hex')}é`;
        expect(Buffer.from(cipher.seal(key, nonce, text, plaintext)).equals(Buffer.from(noble(key, nonce, Buffer.from(text)).encrypt(plaintext)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves the headroom asked for in front of the sealed bytes', async () => {
    await loadFastCipher();
    const key = new Uint8Array(32).fill(5);
    const nonce = new Uint8Array(nonceBytes).fill(6);
    const sealed = cipher.seal(key, nonce, 'ad', new Uint8Array([1, 2, 3]), 25);
    expect(sealed.length).toBe(25 + 3 + 16);
    expect(Buffer.from(sealed.subarray(25)).equals(Buffer.from(noble(key, nonce, Buffer.from('ad')).encrypt(new Uint8Array([1, 2, 3]))))).toBe(true);
  });

  it('seals and opens values larger than libsodium’s scratch area the same way', async () => {
    await loadFastCipher();
    const key = new Uint8Array(32).fill(9);
    const nonce = new Uint8Array(nonceBytes).fill(4);
    const ad = new Uint8Array(100).fill(1);
    const plaintext = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
    const sealed = cipher.seal(key, nonce, ad, plaintext);
    expect(Buffer.from(sealed).equals(Buffer.from(noble(key, nonce, ad).encrypt(plaintext)))).toBe(true);
    expect(Buffer.from(cipher.open(key, nonce, ad, sealed)).equals(Buffer.from(plaintext))).toBe(true);
  });

  it('refuses sealed bytes, a nonce or associated data changed in any one bit, a sealed value shorter than its tag, and a key or nonce of the wrong size', async () => {
    await loadFastCipher();
    fc.assert(
      fc.property(input, fc.constantFrom('sealed', 'nonce', 'ad'), fc.nat(), fc.integer({ min: 0, max: 7 }), ({ key, nonce, ad, plaintext }, part, at, bit) => {
        const sealed = cipher.seal(key, nonce, ad, plaintext);
        const parts = { sealed: Uint8Array.from(sealed), nonce: Uint8Array.from(nonce), ad: Uint8Array.from(ad) };
        const target = parts[part];
        fc.pre(target.length > 0);
        target[at % target.length] = (target[at % target.length] as number) ^ (1 << bit);
        expect(() => cipher.open(key, parts.nonce, parts.ad, parts.sealed)).toThrow();
      }),
      { numRuns: 300 },
    );
    expect(() => cipher.open(new Uint8Array(32), new Uint8Array(nonceBytes), new Uint8Array(0), new Uint8Array(15))).toThrow();
    expect(() => cipher.seal(new Uint8Array(31), new Uint8Array(nonceBytes), new Uint8Array(0), new Uint8Array(1))).toThrow(RangeError);
    expect(() => cipher.open(new Uint8Array(32), new Uint8Array(nonceBytes - 1), new Uint8Array(0), new Uint8Array(16))).toThrow(RangeError);
  });
});

const withOpenWith = [
  ['XChaCha20-Poly1305 from libsodium (once loaded)', activeXchacha, 24],
  ['XChaCha20-Poly1305 from HChaCha20 + node', nodeXchacha, 24],
  ['ChaCha20-Poly1305 from libsodium (once loaded)', activeChacha, 12],
  ['ChaCha20-Poly1305 from node', nodeChacha20, 12],
] as const;

describe.each(withOpenWith)('%s', (_, cipher, nonceBytes) => {
  it('gives openWith’s reader the plaintext where it lies, returns what the reader returns, and wipes those bytes after, also when the reader throws', async () => {
    await loadFastCipher();
    const key = new Uint8Array(32).fill(8);
    const nonce = new Uint8Array(nonceBytes).fill(2);
    for (const length of [34, 40_000]) {
      const plaintext = Uint8Array.from({ length }, (_, i) => (i * 11 + 5) % 256);
      const sealed = cipher.seal(key, nonce, 'ad', plaintext);
      let seen: { bytes: Uint8Array; start: number; end: number } | undefined;
      const got = cipher.openWith(key, nonce, 'ad', sealed, (bytes, start, end) => {
        seen = { bytes, start, end };
        return Buffer.from(bytes.subarray(start, end)).equals(Buffer.from(plaintext)) ? 'read' : 'other bytes';
      });
      expect(got).toBe('read');
      expect(seen !== undefined && seen.end - seen.start).toBe(length);
      expect(seen?.bytes.subarray(seen.start, seen.end).every((byte) => byte === 0)).toBe(true);
      let during: Uint8Array | undefined;
      expect(() => cipher.openWith(key, nonce, 'ad', sealed, (bytes, start, end) => {
        during = bytes.subarray(start, end);
        throw new Error('the reader failed');
      })).toThrow('the reader failed');
      expect(during?.length).toBe(length);
      expect(during?.every((byte) => byte === 0)).toBe(true);
      expect(() => cipher.openWith(key, nonce, 'other ad', sealed, () => 'read')).toThrow();
    }
  });
});

describe('libsodium’s memory', () => {
  /** Where `needle` occurs in `heap`, or -1. */
  const find = (heap: Uint8Array, needle: Uint8Array): number => Buffer.from(heap.buffer, heap.byteOffset, heap.byteLength).indexOf(Buffer.from(needle));

  it.each(['xchacha20poly1305', 'chacha20poly1305'] as const)('holds no key after a %s seal or open, no plaintext after a seal, and no plaintext after an open once wiped, small or large', async (aead) => {
    const sodium = await ((await import('libsodium')).default as () => Promise<Sodium>)();
    const cipher = sodiumCipher(sodium, aead);
    const nonce = new Uint8Array(aead === 'xchacha20poly1305' ? 24 : 12).fill(3);
    for (const length of [34, 40_000]) {
      const key = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
      const plaintext = Uint8Array.from({ length }, (_, i) => (i * 7 + 13) % 256);
      const sealed = cipher.seal(key, nonce, new Uint8Array(8), plaintext);
      expect(find(sodium.HEAPU8, key)).toBe(-1);
      expect(find(sodium.HEAPU8, plaintext.subarray(0, 32))).toBe(-1);
      expect(Buffer.from(cipher.open(key, nonce, new Uint8Array(8), sealed)).equals(Buffer.from(plaintext))).toBe(true);
      expect(find(sodium.HEAPU8, key)).toBe(-1);
      cipher.wipe();
      // The last partial block of every length the value could end on.
      for (let end = plaintext.length; end >= 8 && end > plaintext.length - 64; end--) expect(find(sodium.HEAPU8, plaintext.subarray(end - 8, end))).toBe(-1);
      expect(find(sodium.HEAPU8, plaintext.subarray(0, 32))).toBe(-1);
    }
  });
});
