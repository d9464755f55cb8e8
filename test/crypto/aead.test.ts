import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { XCHACHA_TAG_LENGTH, xchachaEncryptInto } from '../../crypto/aead.js';

const randomBytes = (n: number): Uint8Array => new Uint8Array(nodeRandomBytes(n));

function encrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + XCHACHA_TAG_LENGTH);
  xchachaEncryptInto(key, nonce, aad, plaintext, out);
  return out;
}

const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const nonce = fc.uint8Array({ minLength: 24, maxLength: 24 });

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
        expect(Buffer.from(encrypt(k, n, aad, pt)).equals(Buffer.from(xchacha20poly1305(k, n, aad).encrypt(pt))), `length ${length}, aad ${aadLength}`).toBe(true);
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
    expect(() => xchachaEncryptInto(new Uint8Array(32), new Uint8Array(12), new Uint8Array(0), pt, new Uint8Array(26))).toThrow(/nonce must be 24 bytes, got 12/);
    expect(() => xchachaEncryptInto(new Uint8Array(32), new Uint8Array(24), new Uint8Array(0), pt, new Uint8Array(25))).toThrow(/output must be 26 bytes, got 25/);
  });
});
