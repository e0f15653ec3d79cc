/**
 * The XChaCha20-Poly1305 that seals values and wraps keys, in both of its implementations
 * (libsodium's, and HChaCha20 with node's ChaCha20-Poly1305 until libsodium has loaded), against
 * @noble/ciphers' `xchacha20poly1305`, which every store so far was written with: the same bytes
 * for any key, nonce, associated data and plaintext, each opening what the other sealed, and any
 * change to the sealed bytes, the nonce or the associated data refused.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activeXchacha, loadFastCipher, nodeXchacha, sodiumXchacha, xchachaOpen, xchachaSeal, type Cipher, type Sodium } from '../src/crypto/xchacha.ts';

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const input = fc.record({ key: bytes(32), nonce: bytes(24), ad: fc.uint8Array({ maxLength: 80 }), plaintext: fc.uint8Array({ maxLength: 300 }) });

const active: Cipher = { seal: xchachaSeal, open: xchachaOpen, wipe: () => {} };

describe.each([['libsodium (once loaded)', active], ['HChaCha20 + node', nodeXchacha]] as const)('XChaCha20-Poly1305 from %s', (_, cipher) => {
  it('seals to the bytes @noble/ciphers seals to, and each opens what the other sealed', async () => {
    await loadFastCipher();
    if (cipher === active) expect(activeXchacha()).toBe('libsodium');
    fc.assert(
      fc.property(input, ({ key, nonce, ad, plaintext }) => {
        const ours = cipher.seal(key, nonce, ad, plaintext);
        const noble = xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
        expect(Buffer.from(ours).equals(Buffer.from(noble))).toBe(true);
        expect(Buffer.from(cipher.open(key, nonce, ad, noble)).equals(Buffer.from(plaintext))).toBe(true);
        expect(Buffer.from(xchacha20poly1305(key, nonce, ad).decrypt(ours)).equals(Buffer.from(plaintext))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('seals and opens values larger than libsodium’s scratch area the same way', async () => {
    await loadFastCipher();
    const key = new Uint8Array(32).fill(9);
    const nonce = new Uint8Array(24).fill(4);
    const ad = new Uint8Array(100).fill(1);
    const plaintext = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
    const sealed = cipher.seal(key, nonce, ad, plaintext);
    expect(Buffer.from(sealed).equals(Buffer.from(xchacha20poly1305(key, nonce, ad).encrypt(plaintext)))).toBe(true);
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
      { numRuns: 500 },
    );
    expect(() => cipher.open(new Uint8Array(32), new Uint8Array(24), new Uint8Array(0), new Uint8Array(15))).toThrow();
    expect(() => cipher.seal(new Uint8Array(31), new Uint8Array(24), new Uint8Array(0), new Uint8Array(1))).toThrow(RangeError);
    expect(() => cipher.open(new Uint8Array(32), new Uint8Array(23), new Uint8Array(0), new Uint8Array(16))).toThrow(RangeError);
  });
});

describe('libsodium’s memory', () => {
  /** Where `needle` occurs in `heap`, or -1. */
  const find = (heap: Uint8Array, needle: Uint8Array): number => Buffer.from(heap.buffer, heap.byteOffset, heap.byteLength).indexOf(Buffer.from(needle));

  it('holds no key after a seal or an open, no plaintext after a seal, and no plaintext after an open once wiped, small or large', async () => {
    const sodium = await ((await import('libsodium')).default as () => Promise<Sodium>)();
    const cipher = sodiumXchacha(sodium);
    for (const length of [34, 40_000]) {
      const key = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
      const nonce = new Uint8Array(24).fill(3);
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
