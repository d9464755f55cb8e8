/** Wire types of the shared memory: context documents, sessions, agent records, acks. */
import { z } from 'zod';
import { AgentIdSchema, MessageIdSchema, SessionIdSchema, ID_MAX_LENGTH } from './ids.js';
import { MessageTypeSchema } from './envelope.js';

const IsoTimestamp = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp' });

/** `global`, `agent:<id>` or `session:<id>`. */
export const ContextScopeSchema = z
  .string()
  .max(ID_MAX_LENGTH + 8)
  .regex(/^(global|agent:[A-Za-z0-9_.:-]{1,128}|session:[A-Za-z0-9_.:-]{1,128})$/, {
    error: 'scope must be "global", "agent:<agent id>" or "session:<session id>"',
  });
export type ContextScope = z.infer<typeof ContextScopeSchema>;

export const ContextDocumentSchema = z
  .strictObject({
    scope: ContextScopeSchema,
    version: z.number().int().min(0),
    data: z.record(z.string(), z.json()),
    updated_by: AgentIdSchema.nullable(),
    updated_at: IsoTimestamp.nullable(),
  })
  .meta({ id: 'ContextDocument' });
export type ContextDocument = z.infer<typeof ContextDocumentSchema>;

export const ContextPushSchema = z.strictObject({
  scope: ContextScopeSchema,
  /** JSON merge patch (RFC 7396); lists under `shared_knowledge` are unioned. */
  patch: z.record(z.string(), z.json(), { error: 'patch must be a JSON object' }),
  /** When set, the push is a compare-and-set: CONFLICT unless the current version equals it. */
  expected_version: z.number().int().min(0).optional(),
});
export type ContextPush = z.infer<typeof ContextPushSchema>;

export const SESSION_STATUSES = ['active', 'paused', 'completed'] as const;
export const SessionStatusSchema = z.enum(SESSION_STATUSES, {
  error: `status must be one of ${SESSION_STATUSES.join(', ')}`,
});
export type SessionStatus = z.infer<typeof SessionStatusSchema>;

export const SessionMessageRefSchema = z.strictObject({
  message_id: MessageIdSchema,
  from: AgentIdSchema,
  to: AgentIdSchema.nullable(),
  type: MessageTypeSchema,
  timestamp: IsoTimestamp,
});
export type SessionMessageRef = z.infer<typeof SessionMessageRefSchema>;

export const SessionMetadataSchema = z.object({ goal: z.string().max(10_000).optional(), deadline: IsoTimestamp.optional() }).catchall(z.json());
export type SessionMetadata = z.infer<typeof SessionMetadataSchema>;

export const SessionSchema = z
  .strictObject({
    session_id: SessionIdSchema,
    participants: z.array(AgentIdSchema),
    created_by: AgentIdSchema,
    created_at: IsoTimestamp,
    updated_at: IsoTimestamp,
    status: SessionStatusSchema,
    metadata: SessionMetadataSchema,
    messages: z.array(SessionMessageRefSchema),
  })
  .meta({ id: 'Session' });
export type Session = z.infer<typeof SessionSchema>;

export const PublicKeysSchema = z.strictObject({
  /** X25519 public key for NaCl box, base64. */
  box: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, { error: 'box key must be 32 bytes in base64' })
    .optional(),
  /** Ed25519 public key for signatures, base64. */
  sign: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, { error: 'sign key must be 32 bytes in base64' })
    .optional(),
});
export type PublicKeys = z.infer<typeof PublicKeysSchema>;

export const AgentTypeSchema = z
  .string()
  .min(1, { error: 'agent type must not be empty' })
  .max(64, { error: 'agent type must be at most 64 characters' })
  .regex(/^[A-Za-z0-9_.:-]+$/, { error: 'agent type may only contain letters, digits and _ . : -' });

/** An agent as the registry knows it. Presence (online, connected_since) is joined in by agents.list. */
export const AgentRecordSchema = z
  .strictObject({
    agent_id: AgentIdSchema,
    agent_type: AgentTypeSchema,
    metadata: z.record(z.string(), z.json()),
    public_keys: PublicKeysSchema,
    created_at: IsoTimestamp,
    last_seen: IsoTimestamp.nullable(),
  })
  .meta({ id: 'AgentRecord' });
export type AgentRecord = z.infer<typeof AgentRecordSchema>;

export const AgentStatusSchema = AgentRecordSchema.extend({
  online: z.boolean(),
  connected_since: IsoTimestamp.nullable(),
}).meta({ id: 'AgentStatus' });
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

export const AckSchema = z.strictObject({
  message_id: MessageIdSchema,
  by: AgentIdSchema,
  at: IsoTimestamp,
});
export type Ack = z.infer<typeof AckSchema>;
