import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { bytesToHex, hexToBytes } from '@noble/ciphers/utils.js';
import { boxKeyPair, boxKeyPairFromSecretKey, boxOpen, boxSeal, boxSharedKey, secretboxKey, secretboxOpen, secretboxSeal } from '../../crypto/nacl.js';
import { CryptoError } from '../../crypto/errors.js';

// NaCl's published vectors ("Cryptography in NaCl", also libsodium test/default/box.c and
// secretbox.c): independent of both noble and tweetnacl.
const ALICE_SK = hexToBytes('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const ALICE_PK = hexToBytes('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
const BOB_SK = hexToBytes('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
const BOB_PK = hexToBytes('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const FIRSTKEY = hexToBytes('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389');
const NONCE = hexToBytes('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37');
const MESSAGE = hexToBytes(
  'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc' +
    'e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31' +
    '0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde' +
    '048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864' +
    '5e0705',
);
// MAC(16) ‖ ciphertext(131), i.e. crypto_secretbox_easy / crypto_box_easy output.
const BOXED =
  'f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce' +
  '48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972' +
  '71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae' +
  '90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3' +
  '7973f622a43d14a6599b1f654cb45a74e355a5';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const message = fc.uint8Array({ maxLength: 300 });

function expectCode(fn: () => unknown, code: CryptoError['code']): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CryptoError);
    expect((e as CryptoError).code).toBe(code);
    return;
  }
  expect.unreachable('expected a CryptoError');
}

describe('secretbox', () => {
  it('NaCl known answer: nonce ‖ MAC ‖ ciphertext', () => {
    const sealed = secretboxSeal(FIRSTKEY, MESSAGE, { nonce: NONCE });
    expect(bytesToHex(sealed)).toBe(bytesToHex(NONCE) + BOXED);
    expect(secretboxOpen(FIRSTKEY, sealed)).toEqual(MESSAGE);
  });

  it('libsodium known answer (short message)', () => {
    const key = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const nonce = hexToBytes('6465666768696a6b6c6d6e6f707172737475767778797a7b');
    const sealed = secretboxSeal(key, new TextEncoder().encode('The quick brown fox jumps over 13 lazy dogs.'), { nonce });
    expect(bytesToHex(sealed.subarray(24))).toBe(
      '7c5a9ef2f79324f1da8cf99305f1779756d1fce94bc3a78adbdd41e658f3cd3858c540878ed3266bd52c2de26ff9e9b99b4f9879354ebb809a71644c',
    );
  });

  it('is byte-identical to tweetnacl, and each opens the other', () => {
    fc.assert(
      fc.property(bytes(32), bytes(24), message, (key, nonce, msg) => {
        const ours = secretboxSeal(key, msg, { nonce });
        const theirs = nacl.secretbox(msg, nonce, key);
        expect(bytesToHex(ours)).toBe(bytesToHex(nonce) + bytesToHex(theirs));
        expect(nacl.secretbox.open(ours.subarray(24), nonce, key)).toEqual(msg);
        expect(secretboxOpen(key, Uint8Array.from([...nonce, ...theirs]))).toEqual(msg);
      }),
      { numRuns: 150 },
    );
  });

  it('round-trips with a random nonce that tweetnacl can use', () => {
    fc.assert(
      fc.property(message, (msg) => {
        const key = secretboxKey();
        const sealed = secretboxSeal(key, msg);
        expect(sealed.length).toBe(24 + 16 + msg.length);
        expect(secretboxOpen(key, sealed)).toEqual(msg);
        expect(nacl.secretbox.open(sealed.subarray(24), sealed.subarray(0, 24), key)).toEqual(msg);
      }),
      { numRuns: 100 },
    );
  });

  it('uses a fresh nonce each time', () => {
    const key = secretboxKey();
    const a = secretboxSeal(key, new Uint8Array(8));
    const b = secretboxSeal(key, new Uint8Array(8));
    expect(bytesToHex(a.subarray(0, 24))).not.toBe(bytesToHex(b.subarray(0, 24)));
    expect(secretboxKey()).toHaveLength(32);
  });

  it('any single flipped bit fails with DECRYPT_FAILED', () => {
    fc.assert(
      fc.property(message, fc.nat(), (msg, at) => {
        const key = secretboxKey();
        const sealed = secretboxSeal(key, msg);
        const bit = at % (sealed.length * 8);
        sealed[bit >> 3]! ^= 1 << (bit & 7);
        expectCode(() => secretboxOpen(key, sealed), 'DECRYPT_FAILED');
      }),
      { numRuns: 200 },
    );
  });

  it('any truncation fails with DECRYPT_FAILED, never returns', () => {
    fc.assert(
      fc.property(message, fc.nat(), (msg, at) => {
        const key = secretboxKey();
        const sealed = secretboxSeal(key, msg);
        expectCode(() => secretboxOpen(key, sealed.subarray(0, at % sealed.length)), 'DECRYPT_FAILED');
      }),
      { numRuns: 200 },
    );
  });

  it('a wrong key fails with the standard message', () => {
    const sealed = secretboxSeal(secretboxKey(), Uint8Array.of(1, 2, 3));
    expect(() => secretboxOpen(secretboxKey(), sealed)).toThrow('could not open: wrong key, wrong associated data or tampered data');
  });
});

describe('box', () => {
  it('NaCl known answer: keys, beforenm, and the box both ways', () => {
    expect(boxKeyPairFromSecretKey(ALICE_SK).publicKey).toEqual(ALICE_PK);
    expect(boxKeyPairFromSecretKey(BOB_SK).publicKey).toEqual(BOB_PK);
    expect(bytesToHex(boxSharedKey(BOB_PK, ALICE_SK))).toBe(bytesToHex(FIRSTKEY));
    expect(bytesToHex(boxSharedKey(ALICE_PK, BOB_SK))).toBe(bytesToHex(FIRSTKEY));
    const sealed = boxSeal(BOB_PK, ALICE_SK, MESSAGE, { nonce: NONCE });
    expect(bytesToHex(sealed)).toBe(bytesToHex(NONCE) + BOXED);
    expect(boxOpen(ALICE_PK, BOB_SK, sealed)).toEqual(MESSAGE);
  });

  it('is byte-identical to tweetnacl, and each opens the other', () => {
    fc.assert(
      fc.property(bytes(32), bytes(32), bytes(24), message, (aliceSk, bobSk, nonce, msg) => {
        const alice = nacl.box.keyPair.fromSecretKey(aliceSk);
        const bob = nacl.box.keyPair.fromSecretKey(bobSk);
        expect(boxKeyPairFromSecretKey(aliceSk).publicKey).toEqual(alice.publicKey);
        expect(boxSharedKey(bob.publicKey, aliceSk)).toEqual(nacl.box.before(bob.publicKey, aliceSk));
        const ours = boxSeal(bob.publicKey, aliceSk, msg, { nonce });
        const theirs = nacl.box(msg, nonce, bob.publicKey, aliceSk);
        expect(bytesToHex(ours)).toBe(bytesToHex(nonce) + bytesToHex(theirs));
        expect(nacl.box.open(ours.subarray(24), nonce, alice.publicKey, bobSk)).toEqual(msg);
        expect(boxOpen(alice.publicKey, bobSk, Uint8Array.from([...nonce, ...theirs]))).toEqual(msg);
      }),
      { numRuns: 40 },
    );
  });

  it('round-trips between fresh key pairs; a third party cannot open', () => {
    fc.assert(
      fc.property(message, (msg) => {
        const alice = boxKeyPair();
        const bob = boxKeyPair();
        const eve = boxKeyPair();
        const sealed = boxSeal(bob.publicKey, alice.secretKey, msg);
        expect(boxOpen(alice.publicKey, bob.secretKey, sealed)).toEqual(msg);
        expect(boxOpen(bob.publicKey, alice.secretKey, sealed)).toEqual(msg);
        expectCode(() => boxOpen(alice.publicKey, eve.secretKey, sealed), 'DECRYPT_FAILED');
        expectCode(() => boxOpen(eve.publicKey, bob.secretKey, sealed), 'DECRYPT_FAILED');
      }),
      { numRuns: 20 },
    );
  });

  it('a flipped bit or a truncation fails with DECRYPT_FAILED', () => {
    const alice = boxKeyPair();
    const bob = boxKeyPair();
    fc.assert(
      fc.property(message, fc.nat(), (msg, at) => {
        const sealed = boxSeal(bob.publicKey, alice.secretKey, msg);
        expectCode(() => boxOpen(alice.publicKey, bob.secretKey, sealed.subarray(0, at % sealed.length)), 'DECRYPT_FAILED');
        const bit = at % (sealed.length * 8);
        sealed[bit >> 3]! ^= 1 << (bit & 7);
        expectCode(() => boxOpen(alice.publicKey, bob.secretKey, sealed), 'DECRYPT_FAILED');
      }),
      { numRuns: 50 },
    );
  });

  it.each([
    ['zero', '0000000000000000000000000000000000000000000000000000000000000000'],
    ['one', '0100000000000000000000000000000000000000000000000000000000000000'],
    ['order 8', 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'],
    ['p - 1', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
  ])('refuses a low-order public key (%s) with a clear BAD_INPUT error', (_name, hex) => {
    const me = boxKeyPair();
    const low = hexToBytes(hex);
    expectCode(() => boxSeal(low, me.secretKey, Uint8Array.of(1)), 'BAD_INPUT');
    expect(() => boxSharedKey(low, me.secretKey)).toThrow(/theirPublicKey is a low-order X25519 point/);
    expectCode(() => boxOpen(low, me.secretKey, new Uint8Array(40)), 'BAD_INPUT');
  });
});

describe('bad arguments', () => {
  const k32 = new Uint8Array(32);
  const sealed = new Uint8Array(40);
  const pt = new Uint8Array(1);
  it.each<[string, () => unknown, ErrorConstructor, string]>([
    ['secretboxSeal key string', () => secretboxSeal('k' as unknown as Uint8Array, pt), TypeError, 'key must be a Uint8Array, got string'],
    ['secretboxSeal key 31 bytes', () => secretboxSeal(new Uint8Array(31), pt), RangeError, 'key must be 32 bytes, got 31'],
    ['secretboxSeal plaintext array', () => secretboxSeal(k32, [1] as unknown as Uint8Array), TypeError, 'plaintext must be a Uint8Array, got array'],
    ['secretboxSeal nonce 23 bytes', () => secretboxSeal(k32, pt, { nonce: new Uint8Array(23) }), RangeError, 'options.nonce must be 24 bytes, got 23'],
    ['secretboxOpen key 33 bytes', () => secretboxOpen(new Uint8Array(33), sealed), RangeError, 'key must be 32 bytes, got 33'],
    ['secretboxOpen sealed string', () => secretboxOpen(k32, 'x' as unknown as Uint8Array), TypeError, 'sealed must be a Uint8Array, got string'],
    ['boxSeal their key 31 bytes', () => boxSeal(new Uint8Array(31), k32, pt), RangeError, 'theirPublicKey must be 32 bytes, got 31'],
    ['boxSeal my key null', () => boxSeal(k32, null as unknown as Uint8Array, pt), TypeError, 'mySecretKey must be a Uint8Array, got null'],
    ['boxSeal plaintext number', () => boxSeal(k32, k32, 5 as unknown as Uint8Array), TypeError, 'plaintext must be a Uint8Array, got number'],
    ['boxOpen my key 64 bytes', () => boxOpen(k32, new Uint8Array(64), sealed), RangeError, 'mySecretKey must be 32 bytes, got 64'],
    ['boxOpen sealed undefined', () => boxOpen(k32, k32, undefined as unknown as Uint8Array), TypeError, 'sealed must be a Uint8Array, got undefined'],
    ['boxKeyPairFromSecretKey 16 bytes', () => boxKeyPairFromSecretKey(new Uint8Array(16)), RangeError, 'secretKey must be 32 bytes, got 16'],
  ])('%s', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });

  it('accepts Buffers', () => {
    const key = Buffer.from(secretboxKey());
    expect(secretboxOpen(key, Buffer.from(secretboxSeal(key, Buffer.from('hi'))))).toEqual(new TextEncoder().encode('hi'));
  });
});
