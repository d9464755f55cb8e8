/**
 * RFC 8785 (JSON Canonicalization Scheme) serialization, the byte string that Ed25519 envelope
 * signatures cover. Isomorphic: no Node built-ins, so browsers and agents can verify too.
 *
 * It mirrors what `JSON.stringify` puts on the wire (so a receiver who parses the wire text and
 * canonicalizes again gets the same bytes): `toJSON()` is honoured, `undefined` object members
 * are omitted and `undefined` array items become `null`. Where `JSON.stringify` would silently
 * lose or invent data that a signature then covers, it throws instead.
 */

type PathSegment = string | number;

/**
 * Serializes a JSON value canonically (RFC 8785): object members sorted by the UTF-16 code units
 * of their names, no whitespace, numbers and strings exactly as ECMAScript `JSON.stringify`
 * writes them (which is what RFC 8785 prescribes; `-0` becomes `0`).
 * @param value - a JSON value: null, boolean, finite number, string, array, plain object
 *   (objects with `toJSON()`, e.g. `Date`, are serialized through it).
 * @returns the canonical JSON text.
 * @throws RangeError for `NaN` or `±Infinity`.
 * @throws TypeError for a bigint, function, symbol, `Map`, `Set`, binary data (typed arrays,
 *   `ArrayBuffer`), a circular structure, or an `undefined` top-level value.
 *   Messages carry the JSON path of the offending value (`$.a[2]`).
 */
export function canonicalJson(value: unknown): string {
  const path: PathSegment[] = [];
  const text = serialize(value, '', path, new Set());
  if (text === undefined) throw new TypeError(`canonicalJson: ${describe(value)} at $ has no JSON form`);
  return text;
}

function serialize(input: unknown, key: string, path: PathSegment[], stack: Set<object>): string | undefined {
  let value = input;
  if (typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: (key: string) => unknown }).toJSON(key);
  }
  // JSON.stringify unwraps boxed primitives; do the same so `new String('a')` signs as "a".
  if (value instanceof Number || value instanceof String || value instanceof Boolean) value = value.valueOf();

  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(`canonicalJson: ${value} at ${formatPath(path)} is not valid JSON`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return undefined;
    case 'bigint':
    case 'function':
    case 'symbol':
      throw new TypeError(`canonicalJson: ${describe(value)} at ${formatPath(path)} is not valid JSON`);
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (obj instanceof Map || obj instanceof Set || ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer) {
    throw new TypeError(`canonicalJson: ${describe(obj)} at ${formatPath(path)} is not JSON; convert it first`);
  }
  if (stack.has(obj)) throw new TypeError(`canonicalJson: circular structure at ${formatPath(path)}`);
  stack.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    const items: string[] = [];
    for (let i = 0; i < obj.length; i++) {
      path.push(i);
      items.push(serialize(obj[i], String(i), path, stack) ?? 'null');
      path.pop();
    }
    out = `[${items.join(',')}]`;
  } else {
    const members: string[] = [];
    // Default sort compares UTF-16 code units, exactly the order RFC 8785 §3.2.3 requires.
    for (const name of Object.keys(obj).sort()) {
      path.push(name);
      const member = serialize((obj as Record<string, unknown>)[name], name, path, stack);
      path.pop();
      if (member !== undefined) members.push(`${JSON.stringify(name)}:${member}`);
    }
    out = `{${members.join(',')}}`;
  }
  stack.delete(obj);
  return out;
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return 'a bigint';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) return `a ${value.constructor?.name ?? 'object'}`;
  return typeof value;
}

function formatPath(path: readonly PathSegment[]): string {
  let text = '$';
  for (const seg of path) {
    text += typeof seg === 'number' ? `[${seg}]` : /^[A-Za-z_$][\w$]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
  }
  return text;
}
