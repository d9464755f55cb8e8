import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { KeyRing } from '../../crypto/keyring.js';
import { CryptoError } from '../../crypto/errors.js';
import { fromBase64, toBase64 } from '../../crypto/bytes.js';

const plaintext = fc.uint8Array({ maxLength: 300 });
const associatedData = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CryptoError);
    return (e as CryptoError).code;
  }
  throw new Error('expected a CryptoError, but the call returned');
}

describe('KeyRing seal/open', () => {
  const ring = KeyRing.generate();

  it('round-trips bytes and strings with any associated data', () => {
    fc.assert(
      fc.property(plaintext, associatedData, (pt, ad) => {
        expect(ring.open(ring.seal(pt, ad), ad)).toEqual(pt);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string(), (text, ad) => {
        const sealed = ring.sealString(text, ad);
        expect(sealed).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
        expect(ring.openString(sealed, ad)).toBe(text);
      }),
      { numRuns: 200 },
    );
  });

  it('writes version ‖ keyIdLength ‖ keyId ‖ nonce(24) ‖ ciphertext+tag, with header ‖ AD as AAD', () => {
    const pt = new TextEncoder().encode('value');
    const sealed = ring.seal(pt, 'mem:key');
    const id = ring.activeKeyId;
    expect(sealed[0]).toBe(1);
    expect(sealed[1]).toBe(id.length);
    expect(new TextDecoder().decode(sealed.subarray(2, 2 + id.length))).toBe(id);
    expect(sealed.length).toBe(2 + id.length + 24 + pt.length + 16);
    // Independent decryption with the raw key from export(), to pin the format.
    const key = fromBase64(ring.export().keys[id]!);
    const header = sealed.subarray(0, 2 + id.length);
    const aad = Uint8Array.from([...header, ...new TextEncoder().encode('mem:key')]);
    const nonce = sealed.subarray(2 + id.length, 26 + id.length);
    expect(xchacha20poly1305(key, nonce, aad).decrypt(sealed.subarray(26 + id.length))).toEqual(pt);
  });

  it('keeps that layout for every key id length (1 to 64), whatever the alignment of the buffers involved', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/), fc.uint8Array({ maxLength: 300 }), fc.nat(7), (id, pt, offset) => {
        const key = randomBytes(32);
        const r = new KeyRing({ activeKeyId: id, keys: { [id]: key } });
        // The plaintext and the sealed value given to open() may sit at any offset of their buffers.
        const input = new Uint8Array(pt.length + offset).subarray(offset);
        input.set(pt);
        const sealed = r.seal(input, 'k');
        expect(sealed.length).toBe(2 + id.length + 24 + pt.length + 16);
        const aad = Uint8Array.from([...sealed.subarray(0, 2 + id.length), ...new TextEncoder().encode('k')]);
        const nonce = sealed.subarray(2 + id.length, 26 + id.length);
        expect(xchacha20poly1305(key, nonce, aad).decrypt(sealed.slice(26 + id.length))).toEqual(pt);
        const moved = new Uint8Array(sealed.length + offset).subarray(offset);
        moved.set(sealed);
        expect(r.open(moved, 'k')).toEqual(pt);
      }),
      { numRuns: 200 },
    );
  });

  it('uses a fresh nonce each time; string and UTF-8 bytes are the same associated data', () => {
    const pt = Uint8Array.of(1, 2, 3);
    expect(toBase64(ring.seal(pt, 'a'))).not.toBe(toBase64(ring.seal(pt, 'a')));
    expect(ring.open(ring.seal(pt, 'é'), new TextEncoder().encode('é'))).toEqual(pt);
  });

  it('a value moved to another key name (other associated data) does not open', () => {
    fc.assert(
      fc.property(plaintext, fc.string(), fc.string(), (pt, a, b) => {
        fc.pre(a !== b);
        const error = (() => {
          try {
            ring.open(ring.seal(pt, a), b);
          } catch (e) {
            return e as CryptoError;
          }
          return undefined;
        })();
        expect(error).toBeInstanceOf(CryptoError);
        expect(error?.code).toBe('DECRYPT_FAILED');
        expect(error?.message).toBe('could not open: wrong key, wrong associated data or tampered data');
      }),
      { numRuns: 100 },
    );
    const text = ring.sealString('secret', 'memory:agent-a:notes');
    expect(() => ring.openString(text, 'memory:agent-b:notes')).toThrow(/wrong associated data/);
  });

  it('any single flipped bit fails: DECRYPT_FAILED, or UNKNOWN_KEY when it lands in the key id', () => {
    fc.assert(
      fc.property(plaintext, fc.nat(), (pt, at) => {
        const sealed = ring.seal(pt, 'k');
        const bit = at % (sealed.length * 8);
        sealed[bit >> 3]! ^= 1 << (bit & 7);
        const code = codeOf(() => ring.open(sealed, 'k'));
        const inKeyId = bit >> 3 >= 1 && bit >> 3 < 2 + ring.activeKeyId.length;
        if (inKeyId) expect(['DECRYPT_FAILED', 'UNKNOWN_KEY']).toContain(code);
        else expect(code).toBe('DECRYPT_FAILED');
      }),
      { numRuns: 300 },
    );
  });

  it('any truncation fails with DECRYPT_FAILED, never returns', () => {
    fc.assert(
      fc.property(plaintext, fc.nat(), (pt, at) => {
        const sealed = ring.seal(pt, 'k');
        expect(codeOf(() => ring.open(sealed.subarray(0, at % sealed.length), 'k'))).toBe('DECRYPT_FAILED');
      }),
      { numRuns: 200 },
    );
    expect(() => ring.open(new Uint8Array(0), 'k')).toThrow(/truncated/);
  });

  it('an unknown format version fails with DECRYPT_FAILED', () => {
    const sealed = ring.seal(Uint8Array.of(1), 'k');
    sealed[0] = 2;
    expect(() => ring.open(sealed, 'k')).toThrow(/unknown format version 2/);
  });

  it('a wrong key under the same id fails with DECRYPT_FAILED', () => {
    const a = new KeyRing({ activeKeyId: 'k1', keys: { k1: randomBytes(32) } });
    const b = new KeyRing({ activeKeyId: 'k1', keys: { k1: randomBytes(32) } });
    expect(codeOf(() => b.open(a.seal(Uint8Array.of(1), 'x'), 'x'))).toBe('DECRYPT_FAILED');
  });

  it('swapping the key id in the header fails even when both keys are in the ring', () => {
    const two = new KeyRing({ activeKeyId: 'k1', keys: { k1: randomBytes(32), k2: randomBytes(32) } });
    const sealed = two.seal(Uint8Array.of(1, 2), 'x');
    sealed[3] = '2'.charCodeAt(0);
    expect(codeOf(() => two.open(sealed, 'x'))).toBe('DECRYPT_FAILED');
  });

  it('an unknown key id fails with UNKNOWN_KEY naming it', () => {
    const other = KeyRing.generate();
    const sealed = other.seal(Uint8Array.of(1), 'x');
    expect(codeOf(() => ring.open(sealed, 'x'))).toBe('UNKNOWN_KEY');
    expect(() => ring.open(sealed, 'x')).toThrow(`sealed with key id "${other.activeKeyId}"`);
  });
});

describe('KeyRing rotation and lifecycle', () => {
  it('values sealed before rotate() still open; new ones use the new key id', () => {
    const ring = KeyRing.generate();
    const first = ring.activeKeyId;
    const old = ring.sealString('old', 'ad');
    const second = ring.rotate();
    expect(second).not.toBe(first);
    expect(ring.activeKeyId).toBe(second);
    expect(ring.keyIds).toEqual([first, second]);
    expect(ring.openString(old, 'ad')).toBe('old');
    const fresh = ring.seal(Uint8Array.of(9), 'ad');
    expect(ring.sealedKeyId(fresh)).toBe(second);
    expect(ring.sealedKeyId(fromBase64(old))).toBe(first);
  });

  it('any interleaving of seals and rotations keeps every value openable', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant('rotate' as const), fc.string()), { maxLength: 30 }), (steps) => {
        const ring = KeyRing.generate();
        const sealed: [string, string, string][] = [];
        for (const step of steps) {
          if (step === 'rotate') ring.rotate();
          else sealed.push([step, ring.sealString(step, `key:${sealed.length}`), ring.activeKeyId]);
        }
        sealed.forEach(([text, value, keyId], i) => {
          expect(ring.openString(value, `key:${i}`)).toBe(text);
          expect(ring.sealedKeyId(fromBase64(value))).toBe(keyId);
        });
        expect(new Set(ring.keyIds).size).toBe(ring.keyIds.length);
      }),
      { numRuns: 50 },
    );
  });

  it('retire() drops an old key: its values then fail with UNKNOWN_KEY; the active key cannot be retired', () => {
    const ring = KeyRing.generate();
    const first = ring.activeKeyId;
    const old = ring.seal(Uint8Array.of(1), 'x');
    ring.rotate();
    expect(() => ring.retire(ring.activeKeyId)).toThrow(RangeError);
    ring.retire(first);
    expect(ring.keyIds).not.toContain(first);
    expect(codeOf(() => ring.open(old, 'x'))).toBe('UNKNOWN_KEY');
    expect(codeOf(() => ring.retire(first))).toBe('UNKNOWN_KEY');
  });

  it('export() / fromExport() survive JSON and keep opening old values', () => {
    const ring = KeyRing.generate();
    const a = ring.sealString('a', 'x');
    ring.rotate();
    const b = ring.sealString('b', 'x');
    const copy = KeyRing.fromExport(JSON.parse(JSON.stringify(ring.export())));
    expect(copy.activeKeyId).toBe(ring.activeKeyId);
    // Same ids; not necessarily the same order: an export is a JSON object, and an all-digit id
    // such as "99128174" (random ids are 8 hex digits) sorts first in one.
    expect([...copy.keyIds].sort()).toEqual([...ring.keyIds].sort());
    expect(copy.openString(a, 'x')).toBe('a');
    expect(copy.openString(b, 'x')).toBe('b');
  });

  it('keeps key bytes out of JSON.stringify and copies keys it is given', () => {
    const key = randomBytes(32);
    const ring = new KeyRing({ activeKeyId: 'k1', keys: { k1: key } });
    expect(JSON.stringify(ring)).toBe('{"activeKeyId":"k1","keyIds":["k1"]}');
    const sealed = ring.seal(Uint8Array.of(7), 'x');
    key.fill(0);
    expect(ring.open(sealed, 'x')).toEqual(Uint8Array.of(7));
  });
});

describe('KeyRing bad input', () => {
  const ring = KeyRing.generate();
  const k = randomBytes(32);
  it.each<[string, () => unknown, ErrorConstructor, string | RegExp]>([
    ['key of 16 bytes', () => new KeyRing({ activeKeyId: 'k1', keys: { k1: new Uint8Array(16) } }), RangeError, 'key "k1" must be 32 bytes, got 16'],
    [
      'key as string',
      () => new KeyRing({ activeKeyId: 'k1', keys: { k1: 'x' as unknown as Uint8Array } }),
      TypeError,
      'key "k1" must be a Uint8Array, got string',
    ],
    ['key id with a space', () => new KeyRing({ activeKeyId: 'k 1', keys: { 'k 1': k } }), RangeError, /key id must be 1-64 characters/],
    [
      'key id __proto__',
      () => KeyRing.fromExport(JSON.parse(`{"activeKeyId":"k1","keys":{"k1":"${toBase64(k)}","__proto__":"${toBase64(k)}"}}`)),
      RangeError,
      /"__proto__"/,
    ],
    [
      'keys null',
      () => new KeyRing({ activeKeyId: 'k1', keys: null as unknown as Record<string, Uint8Array> }),
      TypeError,
      'options.keys must be an object, got null',
    ],
    [
      'active key number',
      () => new KeyRing({ activeKeyId: 1 as unknown as string, keys: { k1: k } }),
      TypeError,
      'options.activeKeyId must be a string, got number',
    ],
    ['seal plaintext string', () => ring.seal('x' as unknown as Uint8Array, 'ad'), TypeError, 'plaintext must be a Uint8Array, got string'],
    [
      'seal associated data number',
      () => ring.seal(Uint8Array.of(1), 5 as unknown as string),
      TypeError,
      'associatedData must be a string or a Uint8Array, got number',
    ],
    ['open sealed array', () => ring.open([1] as unknown as Uint8Array, 'ad'), TypeError, 'sealed must be a Uint8Array, got array'],
    ['sealString text bytes', () => ring.sealString(Uint8Array.of(1) as unknown as string, 'ad'), TypeError, 'text must be a string, got Uint8Array'],
    ['openString text null', () => ring.openString(null as unknown as string, 'ad'), TypeError, 'sealedText must be a string, got null'],
    ['fromExport non-object', () => KeyRing.fromExport('x'), TypeError, 'key ring export must be an object, got string'],
    ['fromExport key not string', () => KeyRing.fromExport({ activeKeyId: 'k1', keys: { k1: 5 } }), TypeError, 'key "k1" must be a string, got number'],
  ])('%s', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });

  it.each<[string, () => unknown, string, RegExp]>([
    ['active key not among keys', () => new KeyRing({ activeKeyId: 'k2', keys: { k1: k } }), 'UNKNOWN_KEY', /activeKeyId "k2" is not among/],
    ['fromExport bad base64', () => KeyRing.fromExport({ activeKeyId: 'k1', keys: { k1: 'not base64' } }), 'BAD_INPUT', /key "k1" is not valid base64/],
    ['openString not base64', () => ring.openString('###', 'ad'), 'DECRYPT_FAILED', /not valid base64/],
    ['openString of non-UTF-8 bytes', () => ring.openString(toBase64(ring.seal(Uint8Array.of(0xff), 'ad')), 'ad'), 'BAD_INPUT', /plaintext is not valid UTF-8/],
  ])('%s → CryptoError %s', (_name, fn, code, message) => {
    expect(codeOf(fn)).toBe(code);
    expect(fn).toThrow(message);
  });
});
