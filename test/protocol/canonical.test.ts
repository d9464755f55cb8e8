import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalJson } from '../../protocol/canonical.js';

function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

function shuffleKeys(value: unknown, rng: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rng));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).map(([k, v]) => [k, shuffleKeys(v, rng)] as const);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

describe('canonicalJson: RFC 8785 examples', () => {
  it('§3.2.2: literals, numbers and string escaping', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });

  it('§3.2.3: members sorted by UTF-16 code units', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    const expected =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}';
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });

  // Appendix B: IEEE 754 bit patterns and their canonical text.
  it.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ])('Appendix B number %s → %s', (bits, text) => {
    expect(canonicalJson(fromBits(bits))).toBe(text);
    expect(canonicalJson([fromBits(bits)])).toBe(`[${text}]`);
  });

  it.each([
    ['7fffffffffffffff', 'NaN'],
    ['7ff0000000000000', 'Infinity'],
    ['fff0000000000000', '-Infinity'],
  ])('Appendix B %s (%s) is rejected with a RangeError', (bits) => {
    expect(() => canonicalJson(fromBits(bits))).toThrow(RangeError);
  });
});

describe('canonicalJson: behaviour', () => {
  it('sorts nested objects, keeps array order, writes no whitespace', () => {
    const value = { b: [3, { z: 1, a: [true, null] }, 'x'], a: { d: {}, c: [] }, '': 0 };
    expect(canonicalJson(value)).toBe('{"":0,"a":{"c":[],"d":{}},"b":[3,{"a":[true,null],"z":1},"x"]}');
  });

  it('writes numbers as ECMAScript does: 1e21, -0 → 0, integers, small values', () => {
    expect(canonicalJson([1e21, 1e20, -0, 0.1, 100, -1.5e-7, 2 ** 53 + 2])).toBe('[1e+21,100000000000000000000,0,0.1,100,-1.5e-7,9007199254740994]');
  });

  it('orders keys by UTF-16 code units, not code points ("\\uffff" sorts after an astral character)', () => {
    expect(canonicalJson({ '\uffff': 1, '\u{1F600}': 2, a: 3, B: 4, '10': 5, '9': 6 })).toBe('{"10":5,"9":6,"B":4,"a":3,"😀":2,"\uffff":1}');
  });

  it('omits undefined members, writes undefined array items as null (as JSON.stringify does)', () => {
    expect(canonicalJson({ a: undefined, b: 1, c: [undefined, 2] })).toBe('{"b":1,"c":[null,2]}');
  });

  it('honours toJSON (Date) and unwraps boxed primitives', () => {
    const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(canonicalJson({ at: date, n: Object(5), s: Object('x'), t: Object(true) })).toBe('{"at":"2024-01-02T03:04:05.000Z","n":5,"s":"x","t":true}');
  });

  it('escapes strings exactly as JSON.stringify (control characters, lone surrogates)', () => {
    const s = '\u0000\u001f\u007f\b\t\n\f\r"\\/\ud800é';
    expect(canonicalJson(s)).toBe(JSON.stringify(s));
    expect(canonicalJson(s)).toBe('"\\u0000\\u001f\u007f\\b\\t\\n\\f\\r\\"\\\\/\\ud800é"');
  });

  it('accepts a shared (non-circular) reference twice', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  it.each<[string, () => unknown, ErrorConstructor, RegExp]>([
    ['NaN', () => ({ a: [1, NaN] }), RangeError, /NaN at \$\.a\[1\]/],
    ['Infinity', () => Infinity, RangeError, /Infinity at \$/],
    ['-Infinity', () => ({ 'x y': -Infinity }), RangeError, /-Infinity at \$\["x y"\]/],
    ['bigint', () => ({ n: 1n }), TypeError, /bigint at \$\.n/],
    ['function member', () => ({ f: () => 1 }), TypeError, /function at \$\.f/],
    ['symbol in array', () => [Symbol('s')], TypeError, /symbol at \$\[0\]/],
    ['Map', () => ({ m: new Map() }), TypeError, /Map at \$\.m/],
    ['Set', () => new Set([1]), TypeError, /Set/],
    ['Uint8Array', () => ({ bytes: new Uint8Array(2) }), TypeError, /Uint8Array/],
    ['circular structure', () => circular, TypeError, /circular structure at \$\.self/],
    ['top-level undefined', () => undefined, TypeError, /undefined/],
  ])('rejects %s', (_name, make, type, message) => {
    expect(() => canonicalJson(make())).toThrow(type);
    expect(() => canonicalJson(make())).toThrow(message);
  });
});

describe('canonicalJson: properties', () => {
  it('parses back to the same JSON value (JSON.stringify round trip)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 200 },
    );
  });

  it('is idempotent and independent of member order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        let state = seed >>> 0 || 1;
        const rng = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(canonicalJson(shuffleKeys(value, rng))).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});
