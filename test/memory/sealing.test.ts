import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeyRing } from '../../crypto/keyring.js';
import { keyRingSealer, plainText } from '../../memory/sealing.js';

describe('keyRingSealer (the memory layer’s at-rest sealing)', () => {
  const ring = KeyRing.generate();
  const sealer = keyRingSealer(ring);

  it('writes what the key ring’s string API reads, and opens what it writes, for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string(), (text, ad) => {
        const stored = sealer.seal(text, ad);
        expect(stored).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
        expect(ring.openString(stored, ad)).toBe(text);
        expect(sealer.open(ring.sealString(text, ad), ad)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('binds a value to its name: opened under another name it fails', () => {
    const stored = sealer.seal('{"secret":1}', 'msg:a');
    expect(() => sealer.open(stored, 'msg:b')).toThrow(/could not|decrypt|invalid/i);
  });

  it('falls back to sealString for a ring without a bytes API', () => {
    const stringOnly = keyRingSealer({ sealString: (t, ad) => ring.sealString(t, ad), openString: (s, ad) => ring.openString(s, ad) });
    expect(stringOnly.open(stringOnly.seal('hello', 'k'), 'k')).toBe('hello');
    expect(ring.openString(stringOnly.seal('hello', 'k'), 'k')).toBe('hello');
  });

  it('plainText stores JSON as is', () => {
    expect(plainText.enabled).toBe(false);
    expect(plainText.seal('{"a":1}', 'k')).toBe('{"a":1}');
  });
});
