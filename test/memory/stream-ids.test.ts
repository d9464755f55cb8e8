/**
 * memory/store.ts stream-id helpers: the allocation-free comparison agrees with exact BigInt
 * arithmetic on every id shape a store or a client can produce (leading zeros, 20-digit parts past
 * Number's precision, a missing sequence part).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compareStreamIds } from '../../memory/store.js';

/** The reference: both parts as unsigned integers, exactly. */
function reference(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const dm = BigInt(am || '0') - BigInt(bm || '0');
  if (dm !== 0n) return dm < 0n ? -1 : 1;
  const ds = BigInt(as || '0') - BigInt(bs || '0');
  return ds === 0n ? 0 : ds < 0n ? -1 : 1;
}

const digits = fc.oneof(
  fc.bigInt({ min: 0n, max: 18446744073709551615n }).map(String),
  fc.stringMatching(/^[0-9]{1,20}$/),
  fc.constantFrom('0', '00', '9007199254740993', '9007199254740992', '18446744073709551615'),
);
const streamId = fc.tuple(digits, digits).map(([ms, seq]) => `${ms}-${seq}`);

describe('compareStreamIds', () => {
  it('orders like exact integer comparison of (ms, seq)', () => {
    fc.assert(
      fc.property(streamId, streamId, (a, b) => {
        expect(compareStreamIds(a, b)).toBe(reference(a, b));
        expect(compareStreamIds(b, a)).toBe(reference(b, a));
      }),
      { numRuns: 5000 },
    );
  });

  it.each([
    ['1-0', '1-0', 0],
    ['1-0', '1-1', -1],
    ['2-0', '10-0', -1],
    ['10-0', '9-99', 1],
    ['0001-2', '1-2', 0],
    ['1-02', '1-10', -1],
    ['9007199254740993-0', '9007199254740992-0', 1],
    ['18446744073709551615-18446744073709551615', '18446744073709551615-18446744073709551614', 1],
    ['5', '5-0', 0],
    ['5', '5-1', -1],
    ['0-0', '0-1', -1],
  ])('%s vs %s is %i', (a, b, expected) => {
    expect(compareStreamIds(a, b)).toBe(expected);
  });
});
