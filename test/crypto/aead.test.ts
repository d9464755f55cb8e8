import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { XCHACHA_TAG_LENGTH, xchachaDecryptInto, xchachaEncryptInto } from '../../crypto/aead.js';

const randomBytes = (n: number): Uint8Array => new Uint8Array(nodeRandomBytes(n));

function encrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + XCHACHA_TAG_LENGTH);
  xchachaEncryptInto(key, nonce, aad, plaintext, out);
  return out;
}

const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const nonce = fc.uint8Array({ minLength: 24, maxLength: 24 });

/** Opens with xchachaDecryptInto: the plaintext, or null when the tag does not match. */
function decrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  const out = new Uint8Array(sealed.length - XCHACHA_TAG_LENGTH).fill(0xaa);
  const ok = xchachaDecryptInto(key, nonce, aad, sealed, out);
  // Nothing is written when the tag does not match.
  if (!ok) expect(out.every((b) => b === 0xaa)).toBe(true);
  return ok ? out : null;
}

describe('xchachaDecryptInto (crypto/aead.ts)', () => {
  it("opens what noble's xchacha20poly1305 sealed, for any key, nonce, associated data and plaintext", () => {
    fc.assert(
      fc.property(key, nonce, fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 2500 }), (k, n, aad, pt) => {
        expect(decrypt(k, n, aad, xchacha20poly1305(k, n, aad).encrypt(pt))).toEqual(pt);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses any flipped bit of ciphertext or tag, another key, nonce or associated data, and any truncation', () => {
    fc.assert(
      fc.property(key, nonce, fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(7), (k, n, aad, pt, at, bit) => {
        const sealed = xchacha20poly1305(k, n, aad).encrypt(pt);
        const flipped = sealed.slice();
        flipped[at % flipped.length]! ^= 1 << bit;
        expect(decrypt(k, n, aad, flipped)).toBeNull();
        const otherKey = k.slice();
        otherKey[at % 32]! ^= 1 << bit;
        expect(decrypt(otherKey, n, aad, sealed)).toBeNull();
        const otherNonce = n.slice();
        otherNonce[at % 24]! ^= 1 << bit;
        expect(decrypt(k, otherNonce, aad, sealed)).toBeNull();
        expect(decrypt(k, n, Uint8Array.of(...aad, 0), sealed)).toBeNull();
        // Truncated (still a tag's worth of bytes: shorter is a RangeError, tested below).
        if (sealed.length > XCHACHA_TAG_LENGTH)
          expect(decrypt(k, n, aad, sealed.subarray(0, sealed.length - 1 - (at % (sealed.length - XCHACHA_TAG_LENGTH))))).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('refuses wrong lengths', () => {
    const k = new Uint8Array(32);
    const n = new Uint8Array(24);
    expect(() => xchachaDecryptInto(k, n, new Uint8Array(0), new Uint8Array(15), new Uint8Array(0))).toThrow(/sealed data must be at least 16 bytes, got 15/);
    expect(() => xchachaDecryptInto(k, n, new Uint8Array(0), new Uint8Array(20), new Uint8Array(5))).toThrow(/output must be 4 bytes, got 5/);
    expect(() => xchachaDecryptInto(new Uint8Array(16), n, new Uint8Array(0), new Uint8Array(20), new Uint8Array(4))).toThrow(/key must be 32 bytes/);
    const asArray = Array.from(new Uint8Array(32)) as unknown as Uint8Array;
    expect(() => xchachaDecryptInto(asArray, n, new Uint8Array(0), new Uint8Array(20), new Uint8Array(4))).toThrow(TypeError);
    expect(() => xchachaEncryptInto(k, n, 'ad' as unknown as Uint8Array, new Uint8Array(4), new Uint8Array(20))).toThrow(TypeError);
  });
});

describe('xchachaEncryptInto (crypto/aead.ts)', () => {
  it("gives noble's xchacha20poly1305 bytes for any key, nonce, associated data and plaintext", () => {
    fc.assert(
      fc.property(key, nonce, fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 2500 }), (k, n, aad, pt) => {
        const ours = encrypt(k, n, aad, pt);
        expect(Buffer.from(ours).equals(Buffer.from(xchacha20poly1305(k, n, aad).encrypt(pt)))).toBe(true);
        expect(xchacha20poly1305(k, n, aad).decrypt(ours)).toEqual(pt);
      }),
      { numRuns: 400 },
    );
  });

  it('is right at every length around the block and MAC boundaries, calls of different sizes one after the other', () => {
    const k = randomBytes(32);
    const n = randomBytes(24);
    for (const length of [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 700, 1000, 10, 3]) {
      for (const aadLength of [0, 1, 15, 16, 17, 40]) {
        const pt = randomBytes(length);
        const aad = randomBytes(aadLength);
        expect(Buffer.from(encrypt(k, n, aad, pt)).equals(Buffer.from(xchacha20poly1305(k, n, aad).encrypt(pt))), `length ${length}, aad ${aadLength}`).toBe(
          true,
        );
      }
    }
  });

  it('handles inputs larger than its shared scratch (64 KiB), and small ones after them', () => {
    const k = randomBytes(32);
    const n = randomBytes(24);
    for (const length of [64 * 1024 - 64, 64 * 1024, 300_000, 100]) {
      const pt = randomBytes(length);
      const aad = randomBytes(20);
      expect(Buffer.from(encrypt(k, n, aad, pt)).equals(Buffer.from(xchacha20poly1305(k, n, aad).encrypt(pt))), `length ${length}`).toBe(true);
    }
  });

  it('does not change its inputs', () => {
    const k = randomBytes(32);
    const n = randomBytes(24);
    const aad = randomBytes(9);
    const pt = randomBytes(200);
    const copies = [k, n, aad, pt].map((b) => b.slice());
    encrypt(k, n, aad, pt);
    expect([k, n, aad, pt]).toEqual(copies);
  });

  it('refuses wrong key, nonce and output lengths', () => {
    const pt = new Uint8Array(10);
    expect(() => xchachaEncryptInto(new Uint8Array(31), new Uint8Array(24), new Uint8Array(0), pt, new Uint8Array(26))).toThrow(/key must be 32 bytes, got 31/);
    expect(() => xchachaEncryptInto(new Uint8Array(32), new Uint8Array(12), new Uint8Array(0), pt, new Uint8Array(26))).toThrow(
      /nonce must be 24 bytes, got 12/,
    );
    expect(() => xchachaEncryptInto(new Uint8Array(32), new Uint8Array(24), new Uint8Array(0), pt, new Uint8Array(25))).toThrow(
      /output must be 26 bytes, got 25/,
    );
  });
});
