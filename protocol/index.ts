/** The wire protocol: envelope and record schemas, ids, error codes, canonical JSON. Client-safe. */
export {
  ID_PATTERN,
  ID_MAX_LENGTH,
  idSchema,
  AgentIdSchema,
  ChannelNameSchema,
  SessionIdSchema,
  MessageIdSchema,
  TraceIdSchema,
  DEFAULT_CHANNEL,
} from './ids.js';
export type { JsonValue, JsonObject, JsonPrimitive } from './json.js';
export { JsonValueSchema, JsonObjectSchema, jsonByteLength, utf8Length } from './json.js';
export {
  MESSAGE_TYPES,
  MessageTypeSchema,
  DEFAULT_MAX_PAYLOAD_BYTES,
  PRIORITY_MIN,
  PRIORITY_MAX,
  DEFAULT_PRIORITY,
  TTL_MIN_SECONDS,
  TTL_MAX_SECONDS,
  createEnvelopeSchemas,
  EnvelopeSchema,
  OutgoingMessageSchema,
  completeEnvelope,
  expiresAt,
  routeOf,
} from './envelope.js';
export type { MessageType, Envelope, OutgoingMessage, EnvelopeSchemaOptions, CompleteOptions, Route } from './envelope.js';
export {
  ContextScopeSchema,
  ContextDocumentSchema,
  ContextPushSchema,
  SESSION_STATUSES,
  SessionStatusSchema,
  SessionMessageRefSchema,
  SessionMetadataSchema,
  SessionSchema,
  PublicKeysSchema,
  AgentTypeSchema,
  AgentRecordSchema,
  AgentStatusSchema,
  AckSchema,
} from './records.js';
export type {
  ContextScope,
  ContextDocument,
  ContextPush,
  SessionStatus,
  SessionMessageRef,
  SessionMetadata,
  Session,
  PublicKeys,
  AgentRecord,
  AgentStatus,
  Ack,
} from './records.js';
export { ERROR_CODES, LinkerError, isLinkerError } from './errors.js';
export type { LinkerErrorCode } from './errors.js';
export { canonicalJson } from './canonical.js';
export { buildJsonSchema } from './json-schema.js';
