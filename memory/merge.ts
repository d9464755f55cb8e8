/**
 * The seed's "fusion intelligente" of context pushes: a JSON merge patch (RFC 7396), except that
 * lists under `shared_knowledge` (facts, decisions, ...) are unioned without duplicates, so
 * concurrent writers adding facts never lose one another's.
 */
import { canonicalJson } from '../protocol/canonical.js';
import type { JsonObject, JsonValue } from '../protocol/json.js';

const UNION_ROOT = 'shared_knowledge';

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function union(current: JsonValue[], added: JsonValue[]): JsonValue[] {
  const seen = new Set(current.map((v) => canonicalJson(v)));
  const out = [...current];
  for (const v of added) {
    const key = canonicalJson(v);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(v);
    }
  }
  return out;
}

function mergePatch(target: JsonValue | undefined, patch: JsonValue, unionLists: boolean): JsonValue {
  if (!isObject(patch)) {
    if (unionLists && Array.isArray(patch) && Array.isArray(target)) return union(target, patch);
    return patch;
  }
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value, unionLists);
  }
  return result;
}

/** Applies `patch` to `data` and returns the new document (inputs are not modified). */
export function mergeContext(data: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...data };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value, key === UNION_ROOT);
  }
  return result;
}
