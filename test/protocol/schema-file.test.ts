/**
 * protocol/schema.json is generated from the zod schemas (`npm run schema`) and committed: this
 * test fails as soon as the file no longer matches what the generator would write.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { buildJsonSchema } from '../../protocol/json-schema.js';

const SCHEMA_FILE = new URL('../../protocol/schema.json', import.meta.url);
const PACKAGE_JSON = new URL('../../package.json', import.meta.url);
const OUT_OF_DATE = 'protocol/schema.json is out of date: run `npm run schema`';

/** Every `$ref` string anywhere in a JSON document. */
function collectRefs(node: unknown, into: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const item of node) collectRefs(item, into);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') into.push(value);
      else collectRefs(value, into);
    }
  }
  return into;
}

describe('protocol/schema.json', () => {
  it('equals what `npm run schema` generates', () => {
    const expected = JSON.stringify(buildJsonSchema(), null, 2) + '\n';
    const onDisk = existsSync(SCHEMA_FILE) ? readFileSync(SCHEMA_FILE, 'utf8') : '(file missing)';
    // A boolean check: the failure reads as an instruction, not as a 1000-line diff.
    expect(onDisk === expected, OUT_OF_DATE).toBe(true);
  });

  it('is generated deterministically', () => {
    expect(JSON.stringify(buildJsonSchema())).toBe(JSON.stringify(buildJsonSchema()));
  });

  it('is a draft 2020-12 document whose root is the Envelope and whose $defs hold every wire type', () => {
    const doc = buildJsonSchema();
    expect(doc.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(doc.$ref).toBe('#/$defs/Envelope');
    const defs = doc.$defs as Record<string, unknown>;
    for (const id of ['Envelope', 'OutgoingMessage', 'ContextDocument', 'Session', 'AgentStatus']) {
      expect(defs, `$defs.${id}`).toHaveProperty(id);
    }
  });

  it('has only local $refs, each pointing at an existing $defs entry', () => {
    const doc = buildJsonSchema();
    const defs = doc.$defs as Record<string, unknown>;
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref, `a $ref must be a local #/$defs/ pointer`).toMatch(/^#\/\$defs\/[A-Za-z0-9_]+$/);
      const name = ref.slice('#/$defs/'.length);
      expect(Object.keys(defs), `${ref} must resolve`).toContain(name);
    }
  });

  it('keeps the `npm run schema` script that regenerates it', () => {
    const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts?: Record<string, string> };
    expect(pkg.scripts?.schema).toMatch(/generate-schema\.js/);
  });
});
