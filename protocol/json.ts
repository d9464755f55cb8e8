/** JSON values as they travel: anything JSON.stringify round-trips. */
import { z } from 'zod';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const JsonValueSchema: z.ZodType<JsonValue> = z.json();
export const JsonObjectSchema = z.record(z.string(), z.json());

/** UTF-8 byte length of a value's JSON text, without Buffer (client-safe). */
export function jsonByteLength(value: unknown): number {
  return utf8Length(JSON.stringify(value) ?? '');
}

/** True when the value's JSON text fits in `limit` UTF-8 bytes; skips the count when it surely does. */
export function jsonFitsIn(value: unknown, limit: number): { fits: boolean; size: number } {
  // A string's JSON text is at most 6 bytes per UTF-16 code unit (`\u001f`) plus its quotes.
  if (typeof value === 'string' && value.length * 6 + 2 <= limit) return { fits: true, size: value.length + 2 };
  const text = JSON.stringify(value) ?? '';
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short texts need no exact count.
  if (text.length * 3 <= limit) return { fits: true, size: text.length };
  const size = utf8Length(text);
  return { fits: size <= limit, size };
}

export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

const RAW_JSON = Symbol('skynet-linker.rawJson');

/**
 * Remembers `text`, the exact `JSON.stringify(value)`, on `value` (a hidden symbol property:
 * JSON.stringify, superjson and key walks don't see it), so a transport can send the value
 * without serializing it again. The value must not be changed afterwards.
 */
export function withRawJson<T extends object>(value: T, text: string): T {
  Object.defineProperty(value, RAW_JSON, { value: text, enumerable: false, configurable: true });
  return value;
}

/** The JSON text remembered by {@link withRawJson}, if any. */
export function rawJsonOf(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? ((value as { [RAW_JSON]?: string })[RAW_JSON] ?? undefined) : undefined;
}
