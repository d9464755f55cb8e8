import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertBytes, concatBytes, fromBase64, toBase64, utf8Decode, utf8Encode } from '../../crypto/bytes.js';
import { CryptoError } from '../../crypto/errors.js';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('base64', () => {
  it.each([
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ])('RFC 4648 §10 vector %j → %j', (plain, encoded) => {
    expect(toBase64(ascii(plain))).toBe(encoded);
    expect(fromBase64(encoded)).toEqual(ascii(plain));
  });

  it('matches Node Buffer and round-trips for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = toBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(fromBase64(text)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes every byte value and a Buffer input', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(toBase64(Buffer.from(all))).toBe(Buffer.from(all).toString('base64'));
  });

  it.each([
    ['Zg=', /multiple of 4/],
    ['Zh==', /non-zero padding bits/],
    ['Zm9w', null],
    ['Zm9\n', /unexpected character/],
    ['Zm-_', /unexpected character "-"/],
    ['=Zg=', /unexpected character "="/],
    ['Zg=a', /unexpected character "="/],
    ['Z===', /unexpected character "="/],
    ['Zm9vé===', /unexpected character/],
  ])('strict decoding of %j', (text, error) => {
    if (error === null) {
      expect(fromBase64(text)).toEqual(ascii('fop'));
      return;
    }
    try {
      fromBase64(text, 'token');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CryptoError);
      expect((e as CryptoError).code).toBe('BAD_INPUT');
      expect((e as Error).message).toMatch(/^token is not valid base64/);
      expect((e as Error).message).toMatch(error);
    }
  });

  it('rejects a non-string with a TypeError', () => {
    expect(() => fromBase64(42 as unknown as string, 'token')).toThrow(new TypeError('token must be a string, got number'));
    expect(() => toBase64('abc' as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('utf8 and assertions', () => {
  it('round-trips any well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(utf8Decode(utf8Encode(s))).toBe(s);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes strictly', () => {
    expect(() => utf8Decode(Uint8Array.of(0xff), 'plaintext')).toThrow(/plaintext is not valid UTF-8/);
    expect(() => utf8Decode(Uint8Array.of(0xc3))).toThrow(CryptoError);
  });

  it.each<[unknown, number | undefined, ErrorConstructor, string]>([
    ['abc', 32, TypeError, 'key must be a Uint8Array, got string'],
    [null, undefined, TypeError, 'key must be a Uint8Array, got null'],
    [[1, 2], undefined, TypeError, 'key must be a Uint8Array, got array'],
    [new Uint16Array(16), 32, TypeError, 'key must be a Uint8Array, got Uint16Array'],
    [new Uint8Array(31), 32, RangeError, 'key must be 32 bytes, got 31'],
  ])('assertBytes(%o, %s) throws', (value, length, type, message) => {
    expect(() => assertBytes(value, 'key', length)).toThrow(type);
    expect(() => assertBytes(value, 'key', length)).toThrow(message);
  });

  it('accepts a Buffer and concatenates', () => {
    expect(() => assertBytes(Buffer.alloc(32), 'key', 32)).not.toThrow();
    expect(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3))).toEqual(Uint8Array.of(1, 2, 3));
  });
});
