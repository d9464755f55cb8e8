/**
 * Loop guards' memory: the hop count of each message that answers or follows another, and per
 * session the counters that pause a runaway conversation (agent messages and model tokens since
 * the last human message, messages per pair of agents since the last sign of progress).
 * The decisions are pure functions over these counters (`countSessionMessage`), so they are the
 * same on every node and testable without a hub.
 */
import { keys } from './keys.js';
import type { Store } from './store.js';
import type { VersionedDocs } from './versioned.js';

export interface GuardLimits {
  /** Longest chain of messages (parent or caused_by links) before `send` is refused. Default 16. */
  maxHops: number;
  /** Agent messages in a session without a human (admin) message in between. Default 500. */
  sessionMaxAgentMessages: number;
  /** Model tokens reported by connectors in a session without a human message in between. Default 2 000 000; 0 = no limit. */
  sessionMaxTokens: number;
  /** Messages between the same two agents in a session within `pairWindowMs` without progress. Default 50. */
  pairMaxMessages: number;
  /** The pair window. Default 600 000 ms (10 minutes). */
  pairWindowMs: number;
  /**
   * Direct messages in a session that keep going round the same cycle of 2 to 8 agents
   * (A → B → C → A → B → C …) without progress. Default 50; at most 1000.
   */
  cycleMaxMessages: number;
  /** How long a message's hop count is remembered (a reply after that counts from 1 again). Default 86 400 000 ms (1 day). */
  hopsTtlMs: number;
}

export const DEFAULT_GUARD_LIMITS: GuardLimits = {
  maxHops: 16,
  sessionMaxAgentMessages: 500,
  sessionMaxTokens: 2_000_000,
  pairMaxMessages: 50,
  pairWindowMs: 600_000,
  cycleMaxMessages: 50,
  hopsTtlMs: 86_400_000,
};

export type GuardName = 'max_hops' | 'session_messages' | 'session_tokens' | 'pair_messages' | 'cycle_messages';

/** Why a session was paused. */
export interface GuardTrip {
  guard: GuardName;
  reason: string;
  at: string;
}

interface PairWindow {
  count: number;
  /** When the window started (ms since epoch). */
  since: number;
}

/** A session's guard counters (one versioned document per session). */
export interface SessionGuardState {
  agent_messages: number;
  tokens: number;
  /** Per unordered pair `a|b` (sorted). */
  pairs: Record<string, PairWindow>;
  /** The session context's version when the pair windows were last reset: a new version is progress. */
  context_version: number;
  /** The last direct messages' `from>to` since progress, oldest first (cycle detection; capped). */
  recent?: string[];
  paused: GuardTrip | null;
}

export function emptyGuardState(contextVersion = 0): SessionGuardState {
  return { agent_messages: 0, tokens: 0, pairs: {}, context_version: contextVersion, recent: [], paused: null };
}

export interface SessionMessageFacts {
  from: string;
  to: string | null;
  /** Sent by a human (a token with the admin scope): resets the counters. */
  human: boolean;
  /** Model tokens the message reports (a connector's usage), 0 when none. */
  tokens: number;
  /** Current version of the session's shared context (`session:<id>`). */
  contextVersion: number;
  now: number;
}

/** Longest cycle of agents looked for, and the most messages a cycle is checked over. */
export const MAX_CYCLE_LENGTH = 8;
export const MAX_CYCLE_WINDOW = 1000;

/**
 * The agents of a cycle (in order) when the last `over` edges repeat with a period of 2 to
 * MAX_CYCLE_LENGTH and the cycle is closed (each edge starts where the previous one ended).
 */
export function repeatingCycle(edges: readonly string[], over: number): string[] | null {
  for (let period = 2; period <= MAX_CYCLE_LENGTH; period++) {
    if (edges.length < over + period) continue;
    let periodic = true;
    for (let i = edges.length - over; i < edges.length && periodic; i++) periodic = edges[i] === edges[i - period];
    if (!periodic) continue;
    const loop = edges.slice(edges.length - period);
    const agents = loop.map((e) => e.split('>')[0]!);
    const closed = loop.every((e, i) => e.split('>')[1] === agents[(i + 1) % period]);
    if (closed && new Set(agents).size === period) return agents;
  }
  return null;
}

/** Most pairs tracked per session: older windows are dropped first (bounds the document). */
export const MAX_TRACKED_PAIRS = 256;

/**
 * The next state of a session's counters after one more message, and the guard it trips (the
 * message is then refused and the session paused). Pure. A human message resets everything
 * (but does not resume a paused session: that is `sessions resume`); a new version of the session
 * context counts as progress and resets the pair windows.
 */
export function countSessionMessage(
  state: SessionGuardState,
  m: SessionMessageFacts,
  limits: GuardLimits,
): { state: SessionGuardState; trip: GuardTrip | null } {
  // A human may still speak in a paused session (to steer it); only `sessions resume` reopens it to agents.
  if (state.paused) return m.human ? { state, trip: null } : { state, trip: state.paused };
  if (m.human) return { state: emptyGuardState(m.contextVersion), trip: null };
  const at = new Date(m.now).toISOString();
  const next: SessionGuardState = { ...state, pairs: { ...state.pairs } };
  if (m.contextVersion !== state.context_version) {
    next.pairs = {};
    next.recent = [];
    next.context_version = m.contextVersion;
  }
  next.agent_messages += 1;
  next.tokens += m.tokens;
  let trip: GuardTrip | null = null;
  if (next.agent_messages > limits.sessionMaxAgentMessages) {
    trip = { guard: 'session_messages', reason: `more than ${limits.sessionMaxAgentMessages} agent messages without a human message in between`, at };
  } else if (limits.sessionMaxTokens > 0 && next.tokens > limits.sessionMaxTokens) {
    trip = { guard: 'session_tokens', reason: `more than ${limits.sessionMaxTokens} model tokens without a human message in between`, at };
  } else if (m.to && m.to !== m.from) {
    const pair = [m.from, m.to].sort().join('|');
    const window = next.pairs[pair];
    const fresh = !window || m.now - window.since > limits.pairWindowMs;
    const count = fresh ? 1 : window.count + 1;
    next.pairs[pair] = { count, since: fresh ? m.now : window.since };
    if (count > limits.pairMaxMessages) {
      const [a, b] = pair.split('|');
      trip = {
        guard: 'pair_messages',
        reason: `${a} and ${b} exchanged more than ${limits.pairMaxMessages} messages within ${Math.round(limits.pairWindowMs / 1000)} s without progress (no new version of the session context, no human message)`,
        at,
      };
    }
    const recent = [...(next.recent ?? []), `${m.from}>${m.to}`];
    const keep = Math.min(limits.cycleMaxMessages, MAX_CYCLE_WINDOW) + MAX_CYCLE_LENGTH;
    next.recent = recent.length > keep ? recent.slice(recent.length - keep) : recent;
    const cycle = trip ? null : repeatingCycle(next.recent, Math.min(limits.cycleMaxMessages, MAX_CYCLE_WINDOW));
    if (cycle) {
      trip = {
        guard: 'cycle_messages',
        reason: `${cycle.join(' → ')} → ${cycle[0]} went round more than ${limits.cycleMaxMessages} messages without progress (no new version of the session context, no human message)`,
        at,
      };
    }
    const names = Object.keys(next.pairs);
    if (names.length > MAX_TRACKED_PAIRS) {
      names.sort((x, y) => next.pairs[x]!.since - next.pairs[y]!.since);
      for (const name of names.slice(0, names.length - MAX_TRACKED_PAIRS)) delete next.pairs[name];
    }
  }
  if (trip) return { state: { ...state, paused: trip }, trip };
  return { state: next, trip: null };
}

export class GuardStore {
  constructor(
    private readonly store: Store,
    private readonly docs: VersionedDocs,
  ) {}

  /** Hop count of a message; 0 when it is unknown (hop 0 is never stored, nor is what expired). */
  async hopsOf(messageId: string): Promise<number> {
    const text = await this.store.getValue(keys.hops(messageId));
    const n = text === null ? 0 : Number(text);
    return Number.isInteger(n) && n >= 0 ? n : 0;
  }

  async recordHops(messageId: string, hops: number, ttlMs: number): Promise<void> {
    if (hops > 0) await this.store.setValue(keys.hops(messageId), String(hops), ttlMs);
  }

  async sessionState(sessionId: string): Promise<SessionGuardState | null> {
    return (await this.docs.read<SessionGuardState>(keys.sessionGuard(sessionId)))?.value ?? null;
  }

  /**
   * Counts one message of a session (atomically: compare-and-set with retries) and returns the
   * guard it trips, if any. `newlyTripped` is true only for the message that paused the session.
   */
  async countMessage(sessionId: string, facts: SessionMessageFacts, limits: GuardLimits): Promise<{ trip: GuardTrip | null; newlyTripped: boolean }> {
    let trip: GuardTrip | null = null;
    let newlyTripped = false;
    await this.docs.update<SessionGuardState>(keys.sessionGuard(sessionId), (current) => {
      const before = current ?? emptyGuardState(facts.contextVersion);
      const result = countSessionMessage(before, facts, limits);
      trip = result.trip;
      newlyTripped = result.trip !== null && before.paused === null;
      return result.state;
    });
    return { trip, newlyTripped };
  }

  /** Clears a session's counters and its pause (`sessions resume`). */
  async reset(sessionId: string, contextVersion: number): Promise<void> {
    await this.docs.update<SessionGuardState>(keys.sessionGuard(sessionId), () => emptyGuardState(contextVersion));
  }
}
