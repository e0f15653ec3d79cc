/**
 * The XChaCha20-Poly1305 that seals values and wraps keys (HChaCha20, then node's ChaCha20-Poly1305)
 * against @noble/ciphers' `xchacha20poly1305`, which every store so far was written with: the
 * same bytes for any key, nonce, associated data and plaintext, each opening what the other
 * sealed, and any change to the sealed bytes, the nonce or the associated data refused.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { xchachaOpen, xchachaSeal } from '../src/crypto/xchacha.ts';

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const input = fc.record({ key: bytes(32), nonce: bytes(24), ad: fc.uint8Array({ maxLength: 80 }), plaintext: fc.uint8Array({ maxLength: 300 }) });

describe('XChaCha20-Poly1305', () => {
  it('seals to the bytes @noble/ciphers seals to, and each opens what the other sealed', () => {
    fc.assert(
      fc.property(input, ({ key, nonce, ad, plaintext }) => {
        const ours = xchachaSeal(key, nonce, ad, plaintext);
        const noble = xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
        expect(Buffer.from(ours).equals(Buffer.from(noble))).toBe(true);
        expect(Buffer.from(xchachaOpen(key, nonce, ad, noble)).equals(Buffer.from(plaintext))).toBe(true);
        expect(Buffer.from(xchacha20poly1305(key, nonce, ad).decrypt(ours)).equals(Buffer.from(plaintext))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses sealed bytes, a nonce or associated data changed in any one bit, and a sealed value shorter than its tag', () => {
    fc.assert(
      fc.property(input, fc.constantFrom('sealed', 'nonce', 'ad'), fc.nat(), fc.integer({ min: 0, max: 7 }), ({ key, nonce, ad, plaintext }, part, at, bit) => {
        const sealed = xchachaSeal(key, nonce, ad, plaintext);
        const parts = { sealed: Uint8Array.from(sealed), nonce: Uint8Array.from(nonce), ad: Uint8Array.from(ad) };
        const target = parts[part];
        fc.pre(target.length > 0);
        target[at % target.length] = (target[at % target.length] as number) ^ (1 << bit);
        expect(() => xchachaOpen(key, parts.nonce, parts.ad, parts.sealed)).toThrow();
      }),
      { numRuns: 500 },
    );
    expect(() => xchachaOpen(new Uint8Array(32), new Uint8Array(24), new Uint8Array(0), new Uint8Array(15))).toThrow();
  });
});
