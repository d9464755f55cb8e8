/**
 * Client-safe entry: protocol, crypto, the typed client and the agent runtime. Imports no
 * `node:` module and no server code (the hub's router is referenced as a type only).
 */
export {
  EnvelopeSchema,
  OutgoingMessageSchema,
  createEnvelopeSchemas,
  completeEnvelope,
  routeOf,
  expiresAt,
  MESSAGE_TYPES,
  DEFAULT_CHANNEL,
  DEFAULT_MAX_PAYLOAD_BYTES,
  ContextScopeSchema,
  ContextDocumentSchema,
  SessionSchema,
  AgentStatusSchema,
  ERROR_CODES,
  LinkerError,
  canonicalJson,
} from './protocol/index.js';
export type {
  Envelope,
  OutgoingMessage,
  MessageType,
  ContextDocument,
  ContextScope,
  Session,
  SessionStatus,
  SessionMessageRef,
  AgentStatus,
  AgentRecord,
  PublicKeys,
  Ack,
  JsonValue,
  JsonObject,
  LinkerErrorCode,
} from './protocol/index.js';
export {
  secretboxSeal,
  secretboxOpen,
  secretboxKey,
  boxKeyPair,
  boxSeal,
  boxOpen,
  signingKeyPair,
  signEnvelope,
  verifyEnvelope,
  KeyRing,
  CryptoError,
  toBase64,
  fromBase64,
} from './crypto/index.js';
export { createLinkerClient, backoffDelay } from './clients/client.js';
export type { LinkerClient, LinkerClientOptions, LinkerConnection, AppRouter } from './clients/client.js';
export { connectAgent, InboxGapError } from './clients/agent.js';
export type { LinkerAgent, AgentOptions, IncomingMessage, SendOptions, SendResult, AgentState, InboxGap } from './clients/agent.js';
export {
  BUS_TOOLS,
  busToolsFor,
  callBusTool,
  inputSchemaOf,
  jsonSchemaOf,
  viewOf,
  ToolInputError,
  DEFAULT_WAIT_SECONDS,
  MAX_WAIT_SECONDS,
} from './clients/bus-tools/tools.js';
export type { BusTool, BusToolHost, DeliveredView, ToolOutcome } from './clients/bus-tools/tools.js';
export { ToolInbox } from './clients/bus-tools/inbox.js';
export type { ToolInboxOptions } from './clients/bus-tools/inbox.js';
export { agentToolHost } from './clients/bus-tools/agent-host.js';
export type { AgentToolHostOptions } from './clients/bus-tools/agent-host.js';
export type { RouterOutputs, RouterInputs, MonitorEvent, InboxEvent, ChannelEvent, SendReceipt, HistoryPage, WhoAmI, SendInput } from './clients/types.js';
