/** JSON Schema (draft 2020-12) of the wire types, generated from the zod schemas. */
import { z } from 'zod';
import { EnvelopeSchema, OutgoingMessageSchema } from './envelope.js';
import { AgentStatusSchema, ContextDocumentSchema, SessionSchema } from './records.js';

/** The document written to protocol/schema.json; a test fails when the file is out of date. */
export function buildJsonSchema(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  const schemas = {
    Envelope: EnvelopeSchema,
    OutgoingMessage: OutgoingMessageSchema,
    ContextDocument: ContextDocumentSchema,
    Session: SessionSchema,
    AgentStatus: AgentStatusSchema,
  };
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const generated = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io: 'output',
    unrepresentable: 'any',
    uri: (id) => `#/$defs/${id}`,
  }) as { schemas: Record<string, Record<string, unknown>> };
  // Schemas used by several roots (the recursive JSON value) land in a `__shared` document;
  // flatten them into our single $defs so every $ref is a plain local pointer.
  const { __shared, ...roots } = generated.schemas;
  const defs: Record<string, unknown> = { ...((__shared?.['$defs'] as Record<string, unknown>) ?? {}) };
  for (const [id, schema] of Object.entries(roots)) {
    const { $schema: _drop, $id: _id, ...rest } = schema;
    defs[id] = rest;
  }
  const text = JSON.stringify(defs).replaceAll('#/$defs/__shared#/$defs/', '#/$defs/');
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://skynet-linker.dev/protocol/schema.json',
    title: 'Skynet Linker protocol',
    description: 'Generated from protocol/*.ts by `npm run schema`. Do not edit by hand.',
    $ref: '#/$defs/Envelope',
    $defs: JSON.parse(text) as Record<string, unknown>,
  };
}
