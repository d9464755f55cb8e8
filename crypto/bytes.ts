/**
 * Byte helpers shared by the crypto layer. No Buffer and no Node built-ins: this runs unchanged
 * in browsers, where agents also seal and verify.
 */
import { CryptoError } from './errors.js';

/** Whether `value` is a Uint8Array (a Node Buffer counts; so does one from another realm). */
export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array || (ArrayBuffer.isView(value) && value.constructor?.name === 'Uint8Array');
}

/**
 * Asserts that `value` is a Uint8Array, of exactly `length` bytes when given.
 * @param value - the argument to check.
 * @param name - the parameter name used in the error message.
 * @param length - the required byte length, if any.
 * @throws TypeError when `value` is not a Uint8Array.
 * @throws RangeError when its length differs from `length`.
 */
export function assertBytes(value: unknown, name: string, length?: number): asserts value is Uint8Array {
  if (!isBytes(value)) throw new TypeError(`${name} must be a Uint8Array, got ${typeName(value)}`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${name} must be ${length} bytes, got ${value.length}`);
  }
}

/**
 * Asserts that `value` is a string.
 * @throws TypeError naming `name` otherwise.
 */
export function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${typeName(value)}`);
}

/** A short description of a value's type for error messages (`null`, `array`, `Uint16Array`…). */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = /* @__PURE__ */ (() => {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/**
 * Encodes bytes as standard base64 (RFC 4648 §4, with `=` padding), as Python's `b64encode` does.
 * @throws TypeError when `bytes` is not a Uint8Array.
 */
export function toBase64(bytes: Uint8Array): string {
  assertBytes(bytes, 'bytes');
  // btoa over binary strings is native in browsers and Node 18+, and far faster than a JS loop.
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  }
  return btoa(binary);
}

/**
 * Decodes standard padded base64. Strict: no whitespace, no URL-safe alphabet, no missing
 * padding and no stray bits, so every byte string has exactly one accepted text form.
 * @param text - the base64 text.
 * @param name - the parameter name used in error messages.
 * @returns the decoded bytes.
 * @throws TypeError when `text` is not a string.
 * @throws CryptoError `BAD_INPUT` when it is not canonical base64.
 */
export function fromBase64(text: string, name = 'text'): Uint8Array {
  assertString(text, name);
  const bad = (why: string) => new CryptoError('BAD_INPUT', `${name} is not valid base64: ${why}`);
  if (text.length % 4 !== 0) throw bad(`length ${text.length} is not a multiple of 4`);
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  for (let i = 0; i < text.length - pad; i++) {
    const code = text.charCodeAt(i);
    if ((code < 128 ? DECODE[code]! : -1) < 0) throw bad(`unexpected character ${JSON.stringify(text.charAt(i))} at index ${i}`);
  }
  // Canonical form only: the bits that padding leaves over must be zero.
  if (pad > 0) {
    const last = DECODE[text.charCodeAt(text.length - pad - 1)]!;
    if ((last & (pad === 1 ? 3 : 15)) !== 0) throw bad('non-zero padding bits');
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * UTF-8 encodes a string (lone surrogates become U+FFFD, as TextEncoder does).
 * @throws TypeError when `text` is not a string.
 */
export function utf8Encode(text: string, name = 'text'): Uint8Array {
  assertString(text, name);
  return encoder.encode(text);
}

/**
 * Decodes UTF-8 strictly.
 * @throws TypeError when `bytes` is not a Uint8Array.
 * @throws CryptoError `BAD_INPUT` when the bytes are not valid UTF-8.
 */
export function utf8Decode(bytes: Uint8Array, name = 'bytes'): string {
  assertBytes(bytes, name);
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new CryptoError('BAD_INPUT', `${name} is not valid UTF-8`, { cause });
  }
}

/** Concatenates byte arrays into a new one. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
