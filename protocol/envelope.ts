/**
 * The seed's "MCP message": zod schemas for what a sender submits and for the complete envelope
 * the hub stores and delivers. Field names follow the seed exactly (snake_case on the wire).
 */
import { z } from 'zod';
import { AgentIdSchema, ChannelNameSchema, MessageIdSchema, SessionIdSchema, TraceIdSchema } from './ids.js';
import { jsonFitsIn, type JsonValue } from './json.js';

export const MESSAGE_TYPES = ['task', 'reply', 'context_update', 'broadcast', 'heartbeat'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const MessageTypeSchema = z.enum(MESSAGE_TYPES, {
  error: `type must be one of ${MESSAGE_TYPES.join(', ')}`,
});

export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;
export const PRIORITY_MIN = 1;
export const PRIORITY_MAX = 10;
export const DEFAULT_PRIORITY = 5;
/** ttl is in seconds: at least one second, at most 30 days. */
export const TTL_MIN_SECONDS = 1;
export const TTL_MAX_SECONDS = 30 * 24 * 3600;

const IsoTimestampSchema = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp' });
const Base64SignatureSchema = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, { error: 'signature must be a base64 Ed25519 signature (64 bytes)' });
const PrioritySchema = z
  .number({ error: 'priority must be a number' })
  .int({ error: 'priority must be an integer' })
  .min(PRIORITY_MIN, { error: `priority must be between ${PRIORITY_MIN} and ${PRIORITY_MAX}` })
  .max(PRIORITY_MAX, { error: `priority must be between ${PRIORITY_MIN} and ${PRIORITY_MAX}` });
/** Hop counts are computed by the hub; the bound only keeps a stored value sane. */
export const HopsSchema = z.number().int().min(0).max(1_000_000);
const TtlSchema = z
  .number({ error: 'ttl must be a number of seconds' })
  .int({ error: 'ttl must be a whole number of seconds' })
  .min(TTL_MIN_SECONDS, { error: `ttl must be between ${TTL_MIN_SECONDS} and ${TTL_MAX_SECONDS} seconds` })
  .max(TTL_MAX_SECONDS, { error: `ttl must be between ${TTL_MIN_SECONDS} and ${TTL_MAX_SECONDS} seconds` });

function contentSchema(maxPayloadBytes: number, checkedByCaller: boolean): z.ZodType<JsonValue> {
  // The caller checks the content itself (the hub: an iterative walk before this schema, without
  // the recursive z.json()'s per-object memo allocations, and the size against its own setting).
  if (checkedByCaller) return z.custom<JsonValue>(() => true);
  // No limit: the caller checks the size itself.
  if (maxPayloadBytes >= Number.MAX_SAFE_INTEGER) return z.json();
  return z.json().superRefine((content, ctx) => {
    const { fits, size } = jsonFitsIn(content, maxPayloadBytes);
    if (!fits) {
      ctx.addIssue({
        code: 'custom',
        message: `payload content is ${size} bytes, over the limit of ${maxPayloadBytes} bytes`,
        params: { code: 'PAYLOAD_TOO_LARGE', size, limit: maxPayloadBytes },
      });
    }
  });
}

export interface EnvelopeSchemaOptions {
  /** Largest accepted `payload.content`, as UTF-8 JSON bytes. Default 256 KiB. */
  maxPayloadBytes?: number;
  /**
   * `payload.content` is checked by the caller before this schema runs (that it is JSON, and its
   * size): the schema takes it as it is. Default false (a full z.json() check).
   */
  contentCheckedByCaller?: boolean;
}

/** Builds the schemas with a given payload limit (the hub's `maxPayloadBytes` option). */
export function createEnvelopeSchemas(options: EnvelopeSchemaOptions = {}) {
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const content = contentSchema(maxPayloadBytes, options.contentCheckedByCaller ?? false);

  const MessageContext = z.strictObject({
    session_id: SessionIdSchema.nullable(),
    parent_message_id: MessageIdSchema.nullable(),
    priority: PrioritySchema,
    /** The message whose handling led to this one without answering it (a new task while working on a task). */
    caused_by: MessageIdSchema.nullable().optional(),
  });
  const MessageMeta = z.strictObject({
    timestamp: IsoTimestampSchema,
    ttl: TtlSchema.nullable(),
    requires_ack: z.boolean(),
  });

  /** The complete envelope: what the hub stores, delivers and what signatures cover. */
  const Envelope = z
    .strictObject({
      id: MessageIdSchema,
      from_agent: AgentIdSchema,
      to_agent: AgentIdSchema.nullable(),
      type: MessageTypeSchema,
      channel: ChannelNameSchema.nullable(),
      payload: z.strictObject({ content, context: MessageContext, meta: MessageMeta }),
      timestamp: IsoTimestampSchema,
      trace_id: TraceIdSchema,
      encrypted: z.boolean(),
      signature: Base64SignatureSchema.nullable(),
      /**
       * Set by the hub, never by the sender: how many messages led to this one (its parent's or
       * `caused_by`'s hops + 1; 0 for a message that answers nothing). Not covered by the signature.
       */
      hops: HopsSchema.optional(),
    })
    .meta({ id: 'Envelope', title: 'Skynet Linker message envelope' });

  /** What a sender submits: the hub fills id, timestamp, trace_id, from_agent and defaults. */
  const OutgoingMessage = z
    .strictObject({
      id: MessageIdSchema.optional(),
      from_agent: AgentIdSchema.optional(),
      to_agent: AgentIdSchema.nullable().optional(),
      type: MessageTypeSchema,
      channel: ChannelNameSchema.nullable().optional(),
      payload: z.strictObject({
        content,
        context: z
          .strictObject({
            session_id: SessionIdSchema.nullable().optional(),
            parent_message_id: MessageIdSchema.nullable().optional(),
            priority: PrioritySchema.optional(),
            caused_by: MessageIdSchema.nullable().optional(),
          })
          .optional(),
        meta: z
          .strictObject({
            timestamp: IsoTimestampSchema.optional(),
            ttl: TtlSchema.nullable().optional(),
            requires_ack: z.boolean().optional(),
          })
          .optional(),
      }),
      timestamp: IsoTimestampSchema.optional(),
      trace_id: TraceIdSchema.optional(),
      encrypted: z.boolean().optional(),
      signature: Base64SignatureSchema.nullable().optional(),
    })
    .superRefine((m, ctx) => {
      if (!m.to_agent && !m.channel && m.type !== 'broadcast') {
        ctx.addIssue({
          code: 'custom',
          path: ['to_agent'],
          message: 'a message needs to_agent, a channel, or type "broadcast"',
        });
      }
    })
    .meta({
      id: 'OutgoingMessage',
      title: 'A message as a sender submits it',
      // The superRefine above, for JSON Schema readers: a route is to_agent, a channel or a broadcast.
      anyOf: [
        { required: ['to_agent'], properties: { to_agent: { type: 'string' } } },
        { required: ['channel'], properties: { channel: { type: 'string' } } },
        { properties: { type: { const: 'broadcast' } } },
      ],
    });

  return { Envelope, OutgoingMessage, maxPayloadBytes };
}

const defaults = createEnvelopeSchemas();
export const EnvelopeSchema = defaults.Envelope;
export const OutgoingMessageSchema = defaults.OutgoingMessage;

export type Envelope = z.output<typeof EnvelopeSchema>;
export type OutgoingMessage = z.input<typeof OutgoingMessageSchema>;

export interface CompleteOptions {
  /** The authenticated sender; wins over (and must equal) any `from_agent` given. */
  fromAgent: string;
  now?: Date;
  newId?: () => string;
  defaultChannel?: string;
}

/**
 * Fills what the sender left out, as the hub does: id, timestamps, trace id, defaults, and the
 * default channel for a broadcast. The input must already be validated.
 */
export function completeEnvelope(m: z.output<typeof OutgoingMessageSchema>, opts: CompleteOptions): Envelope {
  const now = (opts.now ?? new Date()).toISOString();
  const newId = opts.newId ?? (() => globalThis.crypto.randomUUID());
  const id = m.id ?? newId();
  const channel = m.channel ?? (m.type === 'broadcast' && !m.to_agent ? (opts.defaultChannel ?? 'skynet_core') : null);
  const causedBy = m.payload.context?.caused_by;
  return {
    id,
    from_agent: opts.fromAgent,
    to_agent: m.to_agent ?? null,
    type: m.type,
    channel,
    payload: {
      content: m.payload.content as JsonValue,
      context: {
        session_id: m.payload.context?.session_id ?? null,
        parent_message_id: m.payload.context?.parent_message_id ?? null,
        priority: m.payload.context?.priority ?? DEFAULT_PRIORITY,
        // Only when given, so envelopes without it stay as they were (and their signatures too).
        ...(causedBy ? { caused_by: causedBy } : {}),
      },
      meta: {
        timestamp: m.payload.meta?.timestamp ?? m.timestamp ?? now,
        ttl: m.payload.meta?.ttl ?? null,
        requires_ack: m.payload.meta?.requires_ack ?? false,
      },
    },
    timestamp: m.timestamp ?? now,
    trace_id: m.trace_id ?? id,
    encrypted: m.encrypted ?? false,
    signature: m.signature ?? null,
  };
}

/** Milliseconds since epoch after which the message must not be delivered, or null. */
export function expiresAt(envelope: Envelope): number | null {
  const ttl = envelope.payload.meta.ttl;
  if (ttl === null) return null;
  return Date.parse(envelope.payload.meta.timestamp) + ttl * 1000;
}

export type Route = { kind: 'direct'; to: string } | { kind: 'channel'; channel: string };

/** Where a complete envelope goes: `to_agent` wins; otherwise its channel. */
export function routeOf(envelope: Envelope): Route {
  if (envelope.to_agent) return { kind: 'direct', to: envelope.to_agent };
  if (envelope.channel) return { kind: 'channel', channel: envelope.channel };
  throw new Error('envelope has neither to_agent nor channel');
}
