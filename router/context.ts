/**
 * What every procedure receives: the hub's services (no module state: all injected) and the
 * caller's identity, resolved once per WebSocket connection or HTTP request.
 */
import type { GuardLimits } from '../memory/guards.js';
import type { Logger } from 'pino';
import type { Envelope } from '../protocol/envelope.js';
import type { SharedMemory } from '../memory/index.js';
import type { Scope } from '../memory/tokens.js';
import type { HubMetrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';

/** A message routed by some node, as it travels on the live bus (local and cross-node). */
export interface RoutedEvent {
  node: string;
  /** Stored stream fields (sealed envelope + routing metadata), identical to the stream entry. */
  fields: Record<string, string>;
  /** Recipient agent id -> stream id in its inbox. */
  inboxes: Record<string, string>;
  /**
   * Recipient agent id -> the inbox entry this one follows ('' for an empty inbox). Absent from
   * events of older nodes: their listeners then read the store instead (see procedures/live.ts).
   */
  inboxPrev?: Record<string, string>;
  channel: string | null;
  channelStreamId: string | null;
  /** The channel stream entry this one follows. */
  channelPrev?: string | null;
  from: string;
  to: string | null;
  type: Envelope['type'];
  sentAt: number;
}

export interface AckEvent {
  node: string;
  sender: string;
  streamId: string;
  /** The ack stream entry this one follows ('' for an empty stream; absent from older nodes). */
  prev?: string;
  ack: { message_id: string; by: string; at: string };
}

/**
 * A live stream entry as the bus hands it to a listener. `prev` is the entry it follows in its
 * stream, when the publisher knew it.
 */
export type StreamListener = (streamId: string, fields: Record<string, string>, prev: string | undefined) => void;

export interface ContextEvent {
  node: string;
  scope: string;
  version: number;
}

export type Unlisten = () => void;

/** Live fan-out: local listeners first, other nodes through the store's pub/sub. */
/** A send the hub refused for a reason the monitor shows (a loop guard), across nodes. */
export interface RefusedEvent {
  node: string;
  at: string;
  /** The refused message, as stamped by the hub (never stored, never delivered). */
  message: Envelope;
  refused: { guard: string; reason: string };
}

export interface LiveBus {
  readonly nodeId: string;
  publishRouted(event: RoutedEvent): void;
  publishRefused(event: RefusedEvent): void;
  onRefused(listener: (event: RefusedEvent) => void): Unlisten;
  publishAck(event: AckEvent): void;
  publishContext(event: ContextEvent): void;
  onInbox(agentId: string, listener: StreamListener): Unlisten;
  onChannel(channel: string, listener: StreamListener): Unlisten;
  onRouted(listener: (event: RoutedEvent) => void): Unlisten;
  onAck(sender: string, listener: (event: AckEvent) => void): Unlisten;
  onContext(scope: string, listener: (event: ContextEvent) => void): Unlisten;
}

export interface HubSettings {
  /** Largest `payload.content` accepted, UTF-8 JSON bytes. Default 256 KiB. */
  maxPayloadBytes: number;
  /** Channel a `broadcast` goes to when none is named. Default `skynet_core`. */
  defaultChannel: string;
  /** Auth off: identities are taken from `connectionParams.agent_id` (dev only). */
  insecureNoAuth: boolean;
  /**
   * Bytes a WebSocket may hold unsent before the hub stops feeding its subscriptions. Default 4 MiB.
   * Live entries held for a stalled subscription are bounded by the same number of bytes.
   */
  maxBufferedBytes: number;
  /**
   * How long a subscription waits for its WebSocket to drain below `maxBufferedBytes`. Past it the
   * connection is terminated (no error frame is queued behind what the client is not reading);
   * the client reconnects and resumes from its last event id. Default 30 000 ms.
   */
  slowConsumerTimeoutMs?: number;
  /**
   * Bytes a WebSocket may hold unsent before it is terminated at once, reading or not (replies
   * to a client that calls faster than it reads). Default 64 MiB.
   */
  maxConnectionBufferBytes: number;
  /** Live messages queued per subscription before it falls back to reading the store. Default 10 000. */
  maxQueuedMessages: number;
  /** How often presence of connected agents is refreshed. Default 20 000 ms. */
  presenceRefreshMs: number;
  /**
   * A WebSocket connection authenticates once; its token is checked again on a call when the last
   * check is older than this, so a revoked token (agents.remove) stops working. Default 5 000 ms.
   */
  tokenRecheckMs: number;
  /** How long a message can be answered with a reply (its route is kept that long). Default 24 hours. */
  replyWindowMs: number;
  /** Largest agent metadata (agents.update / agents.add), JSON bytes. Default 16 KiB. */
  maxMetadataBytes: number;
  /** Loop guards (memory/guards.ts); DEFAULT_GUARD_LIMITS when absent. */
  guards?: GuardLimits;
}

/** Rotates the at-rest key ring and persists it; absent when sealing is off. */
export type RotateKeys = () => Promise<{ activeKeyId: string; keyIds: string[] }>;

export interface HubServices {
  memory: SharedMemory;
  bus: LiveBus;
  logger: Logger;
  metrics: HubMetrics;
  rateLimiter: RateLimiter;
  /**
   * Per-agent buckets for every other procedure: queries take from `reads`, mutations and
   * subscription starts from `writes` (messages.send has `rateLimiter`, as before).
   */
  callLimits: { reads: RateLimiter; writes: RateLimiter };
  settings: HubSettings;
  rotateKeys: RotateKeys | null;
  /** Tracks live inbox subscriptions so presence is refreshed while they last. */
  presence: PresenceTracker;
  /** Ends the streams of revoked tokens (transport/revocation.ts); `checkNow` after a removal. */
  revocation?: { checkNow(): Promise<void> };
}

export interface PresenceTracker {
  add(agentId: string, connectionId: string): Promise<void>;
  remove(agentId: string, connectionId: string): Promise<void>;
}

export interface AuthedAgent {
  id: string;
  scopes: readonly Scope[];
}

/** Minimal view of the caller's socket (a `ws` WebSocket), to watch backpressure. */
export interface SocketLike {
  /** Bytes queued to send and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Drops the connection at once, without a closing handshake (a slow consumer's fate). */
  terminate(): void;
}

export const DEFAULT_SLOW_CONSUMER_TIMEOUT_MS = 30_000;

export interface Context {
  hub: HubServices;
  agent: AuthedAgent | null;
  /** Why authentication failed, when it did (said in the UNAUTHORIZED message). */
  authProblem: string | null;
  connectionId: string;
  socket: SocketLike | null;
  /** Agent type announced by the client at connect time (connectionParams.agent_type). */
  announcedType: string | null;
  /**
   * The hash of the token a WebSocket connection or an SSE stream authenticated with, and when it
   * was last verified (see tokenRecheckMs): a revoked token stops its calls and streams.
   */
  credential?: { tokenHash: string; verifiedAt: number } | null;
  /** The connection's AbortSignal (aborted when it closes): work queued for it stops. */
  connectionSignal?: AbortSignal;
}
