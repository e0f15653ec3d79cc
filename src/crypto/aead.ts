/**
 * The two AEADs coherence encrypts with, each with two implementations that give the same bytes:
 *
 * - XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 §2.3) for values and wrapped keys: exactly the
 *   bytes of @noble/ciphers' `xchacha20poly1305` (ciphertext, then the 16-byte tag), which every
 *   stored envelope and wrapped key was written with.
 * - ChaCha20-Poly1305 (RFC 8439, 12-byte nonce) for sealed states (seal.ts): node's
 *   `chacha20-poly1305`, which every sealed record was written with.
 *
 * The implementations:
 * - libsodium's (the `libsodium` package, compiled to WebAssembly), about 1 µs per short value.
 *   It is loaded in the background by the first call here, so a process that never encrypts
 *   never loads it, and a short command does not wait for it.
 * - until then, or where it cannot load, node's native ChaCha20-Poly1305, after HChaCha20
 *   (@noble/ciphers) for XChaCha's subkey, with four zero bytes and the nonce's last 8 as its
 *   nonce: about 5 to 6 µs per short value, most of it node's per-call cipher setup.
 *
 * libsodium works in its own memory: key, nonce and data are copied into a scratch area there,
 * and the key and the plaintext are wiped from it after every call; {@link wipeCipherMemory}
 * wipes what its own code leaves behind. A caller that decodes the plaintext at once (an
 * envelope's value) does so there, through `openWith`, so no copy of it is made at all.
 */
import { hchacha } from '@noble/ciphers/chacha.js';
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const XCHACHA_NONCE_BYTES = 24;
export const CHACHA_NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** Associated data: bytes, or a string authenticated as its UTF-8 bytes (encoded where the cipher works, not copied twice). */
export type AssociatedData = Uint8Array | string;

/** Reads a plaintext, bytes [start, end) of `bytes`, which stay valid only during the call. */
export type ReadPlaintext<T> = (bytes: Uint8Array, start: number, end: number) => T;

/** One implementation of an AEAD (its nonce size is the AEAD's). */
export interface Cipher {
  seal(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, plaintext: Uint8Array, headroom?: number): Buffer;
  open(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, sealed: Uint8Array): Buffer;
  /**
   * Opens `sealed` and gives `read` the plaintext where it lies, bytes [start, end) of `bytes`
   * (libsodium's memory, for libsodium's), then wipes it: no copy of it is left behind.
   */
  openWith<T>(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, sealed: Uint8Array, read: ReadPlaintext<T>): T;
  /** Overwrites what the last calls left in memory the cipher keeps (none for node's). */
  wipe(): void;
}

function checkSizes(key: Uint8Array, nonce: Uint8Array, nonceBytes: number): void {
  if (key.length !== KEY_BYTES || nonce.length !== nonceBytes) throw new RangeError(`expected a 32-byte key and a ${nonceBytes}-byte nonce`);
}

// ---------------------------------------------------------------------------------------------
// node's ChaCha20-Poly1305, and HChaCha20 for XChaCha

/** "expand 32-byte k", the ChaCha constant, as little-endian words. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

/** The RFC 8439 key and nonce of an XChaCha20 key and 24-byte nonce. */
function expand(key: Uint8Array, nonce: Uint8Array): { subkey: Uint8Array; iv: Uint8Array } {
  checkSizes(key, nonce, XCHACHA_NONCE_BYTES);
  // Word views of copies: hchacha reads little-endian words (it swaps on big-endian hosts).
  const words = new Uint32Array(8 + 4 + 8);
  const bytes = new Uint8Array(words.buffer);
  bytes.set(key, 0);
  bytes.set(nonce.subarray(0, 16), 32);
  hchacha(SIGMA, words.subarray(0, 8), words.subarray(8, 12), words.subarray(12, 20));
  const subkey = bytes.slice(48, 80);
  bytes.fill(0);
  const iv = new Uint8Array(12);
  iv.set(nonce.subarray(16, 24), 4);
  return { subkey, iv };
}

/** RFC 8439 ChaCha20-Poly1305 from node, under the key and 12-byte nonce `derive` gives (wiped after). */
function nodeChacha(derive: (key: Uint8Array, nonce: Uint8Array) => { subkey: Uint8Array; iv: Uint8Array }): Cipher {
  return {
    seal(key, nonce, associatedData, plaintext, headroom = 0) {
      const { subkey, iv } = derive(key, nonce);
      try {
        const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
        cipher.setAAD(typeof associatedData === 'string' ? Buffer.from(associatedData) : associatedData, { plaintextLength: plaintext.length });
        const head = cipher.update(plaintext);
        const tail = cipher.final();
        return Buffer.concat([Buffer.alloc(headroom), head, tail, cipher.getAuthTag()]);
      } finally {
        if (subkey !== key) subkey.fill(0);
      }
    },
    open(key, nonce, associatedData, sealed) {
      if (sealed.length < TAG_BYTES) throw new Error('expected a ciphertext with its tag');
      const { subkey, iv } = derive(key, nonce);
      try {
        const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
        const length = sealed.length - TAG_BYTES;
        decipher.setAAD(typeof associatedData === 'string' ? Buffer.from(associatedData) : associatedData, { plaintextLength: length });
        decipher.setAuthTag(sealed.subarray(length));
        const head = decipher.update(sealed.subarray(0, length));
        const tail = decipher.final();
        return tail.length === 0 ? head : Buffer.concat([head, tail]);
      } finally {
        if (subkey !== key) subkey.fill(0);
      }
    },
    openWith(key, nonce, associatedData, sealed, read) {
      const plaintext = this.open(key, nonce, associatedData, sealed);
      try {
        return read(plaintext, 0, plaintext.length);
      } finally {
        plaintext.fill(0);
      }
    },
    wipe() {},
  };
}

/** XChaCha20-Poly1305 from HChaCha20 and node's ChaCha20-Poly1305: what runs until libsodium has loaded. */
export const nodeXchacha: Cipher = nodeChacha(expand);

/** RFC 8439 ChaCha20-Poly1305 from node: what runs until libsodium has loaded. */
export const nodeChacha20: Cipher = nodeChacha((key, nonce) => {
  checkSizes(key, nonce, CHACHA_NONCE_BYTES);
  return { subkey: key, iv: nonce };
});

// ---------------------------------------------------------------------------------------------
// libsodium

/** What is used of the libsodium module (Emscripten's: a heap and C functions taking addresses). */
export interface Sodium {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(address: number): void;
  /** (c, clen_p, m, mlen lo, mlen hi, ad, adlen lo, adlen hi, nsec, npub, k): 0 when done. */
  _crypto_aead_xchacha20poly1305_ietf_encrypt(...args: number[]): number;
  /** (m, mlen_p, nsec, c, clen lo, clen hi, ad, adlen lo, adlen hi, npub, k): 0 when authentic. */
  _crypto_aead_xchacha20poly1305_ietf_decrypt(...args: number[]): number;
  /** As the XChaCha pair, with a 12-byte nonce (RFC 8439). */
  _crypto_aead_chacha20poly1305_ietf_encrypt(...args: number[]): number;
  _crypto_aead_chacha20poly1305_ietf_decrypt(...args: number[]): number;
}

/** Which of libsodium's AEADs a cipher runs. */
export type SodiumAead = 'xchacha20poly1305' | 'chacha20poly1305';

/** The scratch area kept in libsodium's memory: key, nonce, then associated data, input and output. */
const SCRATCH_BYTES = 16 * 1024;
/**
 * ChaCha20 runs a last partial block through a 64-byte buffer on libsodium's stack, which it does
 * not wipe: after an open it holds up to 63 bytes of plaintext. Opening this many zero bytes
 * sealed under a zero key runs the same code and leaves those zeros there instead.
 */
const WIPE_BYTES = 63;
const ZERO_KEY = new Uint8Array(KEY_BYTES);
const textEncoder = new TextEncoder();
const WIPE_INPUT = new Uint8Array(WIPE_BYTES);

/** A plaintext copied out of where it lies, for those who keep it. */
const copyOut: ReadPlaintext<Buffer> = (bytes, start, end) => Buffer.from(bytes.subarray(start, end));

/** One of libsodium's AEADs, working in a scratch area of its memory (its own). */
export function sodiumCipher(sodium: Sodium, aead: SodiumAead): Cipher {
  const encrypt = aead === 'xchacha20poly1305' ? sodium._crypto_aead_xchacha20poly1305_ietf_encrypt : sodium._crypto_aead_chacha20poly1305_ietf_encrypt;
  const decrypt = aead === 'xchacha20poly1305' ? sodium._crypto_aead_xchacha20poly1305_ietf_decrypt : sodium._crypto_aead_chacha20poly1305_ietf_decrypt;
  const nonceBytes = aead === 'xchacha20poly1305' ? XCHACHA_NONCE_BYTES : CHACHA_NONCE_BYTES;
  const scratch = sodium._malloc(SCRATCH_BYTES);
  let wipeSealed: Uint8Array | undefined;
  const zeroNonce = new Uint8Array(nonceBytes);
  const keyAt = scratch;
  const nonceAt = scratch + KEY_BYTES;
  const dataAt = nonceAt + XCHACHA_NONCE_BYTES;
  /** Runs `work` with the data area at hand: the scratch's, or (for large inputs) one allocated and freed around it. */
  const withArea = <T>(bytes: number, work: (at: number) => T): T => {
    if (dataAt + bytes <= scratch + SCRATCH_BYTES) return work(dataAt);
    const area = sodium._malloc(bytes);
    if (area === 0) throw new RangeError('libsodium could not allocate memory for this value');
    try {
      return work(area);
    } finally {
      sodium.HEAPU8.fill(0, area, area + bytes);
      sodium._free(area);
    }
  };
  let heap: Buffer | undefined;
  /** libsodium's memory as a Buffer (one view, made again when the memory grows), for readers that work on Buffers. */
  const heapBytes = (): Buffer => {
    const memory = sodium.HEAPU8;
    if (heap === undefined || heap.buffer !== memory.buffer) heap = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
    return heap;
  };
  /** Room for associated data in the heap: a string takes at most 3 UTF-8 bytes per UTF-16 unit. */
  const room = (associatedData: AssociatedData): number => (typeof associatedData === 'string' ? 3 * associatedData.length : associatedData.length);
  /** Copies key, nonce, associated data (at `at`) and input (right after it) in; the associated data's length. */
  const load = (key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, input: Uint8Array, at: number): number => {
    const heap = sodium.HEAPU8;
    heap.set(key, keyAt);
    heap.set(nonce, nonceAt);
    let adLength: number;
    if (typeof associatedData === 'string') adLength = textEncoder.encodeInto(associatedData, heap.subarray(at, at + room(associatedData))).written;
    else {
      heap.set(associatedData, at);
      adLength = associatedData.length;
    }
    heap.set(input, at + adLength);
    return adLength;
  };
  return {
    seal(key, nonce, associatedData, plaintext, headroom = 0) {
      checkSizes(key, nonce, nonceBytes);
      const length = plaintext.length;
      return withArea(room(associatedData) + 2 * length + TAG_BYTES, (at) => {
        let inputAt = at;
        try {
          const adLength = load(key, nonce, associatedData, plaintext, at);
          inputAt = at + adLength;
          const outputAt = inputAt + length;
          const done = encrypt(outputAt, 0, inputAt, length, 0, at, adLength, 0, 0, nonceAt, keyAt);
          if (done !== 0) throw new Error('libsodium refused to seal');
          const sealed = Buffer.allocUnsafe(headroom + length + TAG_BYTES);
          sealed.set(sodium.HEAPU8.subarray(outputAt, outputAt + length + TAG_BYTES), headroom);
          return sealed;
        } finally {
          sodium.HEAPU8.fill(0, keyAt, keyAt + KEY_BYTES);
          sodium.HEAPU8.fill(0, inputAt, inputAt + length);
        }
      });
    },
    open(key, nonce, associatedData, sealed) {
      return this.openWith(key, nonce, associatedData, sealed, copyOut);
    },
    openWith(key, nonce, associatedData, sealed, read) {
      checkSizes(key, nonce, nonceBytes);
      if (sealed.length < TAG_BYTES) throw new Error('expected a ciphertext with its tag');
      const length = sealed.length - TAG_BYTES;
      return withArea(room(associatedData) + sealed.length + length, (at) => {
        let outputAt = at;
        try {
          const adLength = load(key, nonce, associatedData, sealed, at);
          const inputAt = at + adLength;
          outputAt = inputAt + sealed.length;
          const done = decrypt(outputAt, 0, 0, inputAt, sealed.length, 0, at, adLength, 0, nonceAt, keyAt);
          if (done !== 0) throw new Error('the sealed value fails authentication');
          return read(heapBytes(), outputAt, outputAt + length);
        } finally {
          sodium.HEAPU8.fill(0, keyAt, keyAt + KEY_BYTES);
          sodium.HEAPU8.fill(0, outputAt, outputAt + length);
        }
      });
    },
    wipe() {
      wipeSealed ??= this.seal(ZERO_KEY, zeroNonce, ZERO_KEY, WIPE_INPUT);
      this.open(ZERO_KEY, zeroNonce, ZERO_KEY, wipeSealed);
    },
  };
}

let xchacha: Cipher = nodeXchacha;
let chacha: Cipher = nodeChacha20;
let loading: Promise<void> | undefined;

/**
 * Loads libsodium once per process and switches both AEADs to it; resolves (never rejects) when
 * done or when it cannot load, in which case node's stay. The first seal or open starts it by
 * itself; benchmarks and tests await it to measure or check libsodium's.
 * @example
 * await loadFastCipher();
 * activeCipher(); // 'libsodium'
 */
export function loadFastCipher(): Promise<void> {
  loading ??= (async () => {
    try {
      // The ESM build exports a factory of the module; the CommonJS one the module and its `ready`.
      const imported = (await import('libsodium')) as unknown as { default: (() => Promise<Sodium>) | (Sodium & { ready: Promise<unknown> }) };
      const entry = imported.default;
      let sodium: Sodium;
      if (typeof entry === 'function') sodium = await entry();
      else {
        await entry.ready;
        sodium = entry;
      }
      xchacha = sodiumCipher(sodium, 'xchacha20poly1305');
      chacha = sodiumCipher(sodium, 'chacha20poly1305');
    } catch {
      // Node's ciphers give the same bytes, only slower.
    }
  })();
  return loading;
}

/**
 * Which implementation seals and opens now.
 * @example
 * activeCipher(); // 'node' until libsodium has loaded
 */
export function activeCipher(): 'libsodium' | 'node' {
  return xchacha === nodeXchacha ? 'node' : 'libsodium';
}

/**
 * Overwrites what the last seals and opens left in libsodium's memory (up to 63 bytes of the last
 * plaintext each AEAD opened: key material never stays there). The key cache calls it when it
 * forgets keys.
 * @example
 * material.fill(0);
 * wipeCipherMemory();
 */
export function wipeCipherMemory(): void {
  xchacha.wipe();
  chacha.wipe();
}

/**
 * XChaCha20-Poly1305: encrypts `plaintext` to the ciphertext followed by the tag, after
 * `headroom` bytes left for the caller to fill (an envelope's header), so the result is not
 * copied again.
 * @example
 * const envelope = xchachaSeal(key, nonce, 'coherence/value/v1\u0000...', plaintext, 25); // 25 bytes of header first
 */
export function xchachaSeal(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, plaintext: Uint8Array, headroom = 0): Buffer {
  if (loading === undefined) void loadFastCipher();
  return xchacha.seal(key, nonce, associatedData, plaintext, headroom);
}

/**
 * Decrypts what {@link xchachaSeal} sealed.
 * @throws Error when it fails authentication (the caller says what was tampered with).
 * @example
 * const plaintext = xchachaOpen(key, nonce, associatedData, envelope.subarray(25));
 */
export function xchachaOpen(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, sealed: Uint8Array): Buffer {
  if (loading === undefined) void loadFastCipher();
  return xchacha.open(key, nonce, associatedData, sealed);
}

/**
 * Decrypts what {@link xchachaSeal} sealed and gives the plaintext to `read` where the cipher
 * left it, wiping it once `read` returns: what decodes the plaintext at once need not copy it,
 * and no copy of it stays in memory.
 * @throws Error when it fails authentication (the caller says what was tampered with), or what `read` throws.
 * @example
 * const value = xchachaOpenWith(key, nonce, associatedData, envelope.subarray(25), (bytes, start, end) => packr.unpack(bytes, { start, end }));
 */
export function xchachaOpenWith<T>(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, sealed: Uint8Array, read: ReadPlaintext<T>): T {
  if (loading === undefined) void loadFastCipher();
  return xchacha.openWith(key, nonce, associatedData, sealed, read);
}

/**
 * Decrypts what {@link chachaSeal} sealed and gives the plaintext to `read` where the cipher left
 * it, wiping it once `read` returns (see {@link xchachaOpenWith}).
 * @throws Error when it fails authentication, or what `read` throws.
 * @example
 * const state = chachaOpenWith(recordKey, new Uint8Array(12), associatedData, sealed, decodeInPlace);
 */
export function chachaOpenWith<T>(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, sealed: Uint8Array, read: ReadPlaintext<T>): T {
  if (loading === undefined) void loadFastCipher();
  return chacha.openWith(key, nonce, associatedData, sealed, read);
}

/**
 * ChaCha20-Poly1305 (RFC 8439, 12-byte nonce): the ciphertext followed by the tag, after `headroom` bytes.
 * @example
 * const sealed = chachaSeal(recordKey, new Uint8Array(12), associatedData, plaintext);
 */
export function chachaSeal(key: Uint8Array, nonce: Uint8Array, associatedData: AssociatedData, plaintext: Uint8Array, headroom = 0): Buffer {
  if (loading === undefined) void loadFastCipher();
  return chacha.seal(key, nonce, associatedData, plaintext, headroom);
}
