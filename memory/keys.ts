/**
 * The one key builder: every key the memory layer uses, named after the seed's namespaces.
 * Keys are relative; the store adds its prefix (default `skynet:`). Per-agent and per-session
 * keys carry a hash tag so keys one operation touches together land in one cluster slot.
 * These names are also the associated data of sealed values: a value moved to another key fails to open.
 */
export const keys = {
  /** Capped stream: the agent's inbox and history (the seed's `history:<agent_id>`). */
  history: (agentId: string) => `history:{${agentId}}`,
  /** Last stream id the agent acknowledged: where a fresh subscription starts. */
  cursor: (agentId: string) => `cursor:{${agentId}}`,
  /** Hash of live connections (field = connection id), with a TTL refreshed by heartbeats. */
  presence: (agentId: string) => `presence:{${agentId}}`,
  /** Capped stream of acks of messages this agent sent. */
  acks: (agentId: string) => `acks:{${agentId}}`,
  /** Capped stream of every message routed to a channel. */
  channel: (name: string) => `channel:{${name}}`,
  /** Hash of a channel's members (field = agent id). */
  channelMembers: (name: string) => `channel_members:{${name}}`,
  /** Hash: channel name -> JSON info (created_at). */
  channels: () => 'channels',
  /** Versioned document: a context scope (`global`, `agent:<id>`, `session:<id>`). */
  context: (scope: string) => `context:{${scope}}`,
  /** Versioned document: a session's state. */
  session: (sessionId: string) => `session:{${sessionId}}`,
  /** Capped stream: refs of the messages exchanged in a session. */
  sessionMessages: (sessionId: string) => `session:{${sessionId}}:messages`,
  /** Hash: session id -> JSON summary (status, created_at) for listing. */
  sessions: () => 'sessions',
  /** Hash: agent id -> JSON registry record. */
  agents: () => 'agents',
  /** Hash: agent id -> ISO time last seen (refreshed with presence). */
  lastSeen: () => 'last_seen',
  /** Hash: token hash -> JSON token record. */
  tokens: () => 'tokens',
  /** Associated data for a sealed envelope: binds it to its message id. */
  messageSeal: (messageId: string) => `msg:${messageId}`,
  /** Associated data for a sealed registry record (a field of `agents`): binds it to its agent id. */
  agentSeal: (agentId: string) => `agents:${agentId}`,
  /** Associated data for a sealed token record (a field of `tokens`): binds it to its token hash. */
  tokenSeal: (tokenHash: string) => `tokens:${tokenHash}`,
  /** Associated data for a sealed session summary (a field of `sessions`): binds it to its session id. */
  sessionIndexSeal: (sessionId: string) => `sessions:${sessionId}`,
  /**
   * Hash, one per UTC day (`YYYYMMDD`): message id -> where it went (sender, recipient or
   * channel), so the hub can tell whether a reply answers a message delivered to the replier.
   * Written once per event-loop turn for all the turn's messages; a day's bucket is deleted once
   * it leaves the reply window. Not sealed (routing metadata).
   */
  routes: (day: string) => `routes:{${day}}`,
  /** String with a short TTL: a single-use ticket for a browser's SSE subscription (hash of the ticket). */
  ticket: (ticketHash: string) => `ticket:{${ticketHash}}`,
  snapshot: (name: string) => `snapshot:${name}`,
  /** String with a TTL: a message's hop count (loop guard), stored only when above 0. */
  hops: (messageId: string) => `hops:{${messageId}}`,
  /** Versioned document: a session's loop-guard counters and pause (memory/guards.ts). */
  sessionGuard: (sessionId: string) => `guard:session:{${sessionId}}`,
  /**
   * Hash: hub node id -> when it last said it was alive (ISO, its own clock; informative). The
   * registry of nodes to look for; live state, so `presence:` (not in snapshots).
   */
  nodes: () => 'presence:nodes',
  /**
   * Hash with a TTL: a hub node's heartbeat. It exists while the node refreshes it; the TTL runs on
   * the store's clock, so no node's clock is ever compared with another's.
   */
  nodeAlive: (nodeId: string) => `presence:node:{${nodeId}}`,
} as const;

/** Pub/sub topics (not stored). */
export const topics = {
  /** Every routed message, for live delivery and the monitor, across nodes. */
  routed: () => 'bus:routed',
  /** Sends refused by a loop guard, for the monitor. */
  refused: () => 'bus:refused',
  acks: () => 'bus:acks',
  context: () => 'bus:context',
  control: () => 'bus:control',
} as const;
