/**
 * Loop guards on the send path (the hub's, so no agent can opt out): the hop count of every
 * message, and the session budget and pair windows that pause a runaway session; plus
 * `guards.show` and `guards.resume` (`skynet-linker sessions resume`).
 */
import { z } from 'zod';
import type { Envelope } from '../protocol/envelope.js';
import { LinkerError } from '../protocol/errors.js';
import { SessionIdSchema } from '../protocol/ids.js';
import { keys } from '../memory/keys.js';
import { DEFAULT_GUARD_LIMITS, type GuardTrip } from '../memory/guards.js';
import type { AuthedAgent, Context } from '../router/context.js';
import { adminProcedure, agentProcedure, isAdmin, router } from '../router/trpc.js';

/** The `details.guard` of a refused send: a chain too long, or a session paused by a guard. */
export const LOOP_DETECTED = 'LOOP_DETECTED';
export const SESSION_PAUSED = 'SESSION_PAUSED';

/** Model tokens a message reports: a connector's reply carries `usage.input_tokens` / `output_tokens`. */
export function reportedTokens(content: unknown): number {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return 0;
  const usage = (content as { usage?: unknown }).usage;
  if (typeof usage !== 'object' || usage === null) return 0;
  let total = 0;
  for (const field of ['input_tokens', 'output_tokens'] as const) {
    const n = (usage as Record<string, unknown>)[field];
    if (typeof n === 'number' && Number.isFinite(n) && n > 0) total += Math.min(n, 1e9);
  }
  return total;
}

async function contextVersion(ctx: Context, sessionId: string): Promise<number> {
  return (await ctx.hub.memory.store.getDoc(keys.context(`session:${sessionId}`)))?.version ?? 0;
}

function limits(ctx: Context) {
  return ctx.hub.settings.guards ?? DEFAULT_GUARD_LIMITS;
}

function refuse(ctx: Context, agent: AuthedAgent, envelope: Envelope, guard: string, error: LinkerError): never {
  // (skynet_errors_total counts it too, as CONFLICT, where the router maps the error.)
  ctx.hub.metrics.loopGuardRefusals.inc({ guard });
  // The monitor shows it (every node's monitor streams).
  ctx.hub.bus.publishRefused({ node: ctx.hub.bus.nodeId, at: new Date().toISOString(), message: envelope, refused: { guard, reason: error.message } });
  ctx.hub.logger.warn(
    {
      event: 'loop_guard',
      agent_id: agent.id,
      message_id: envelope.id,
      trace_id: envelope.trace_id,
      session_id: envelope.payload.context.session_id,
      ...error.details,
    },
    error.message,
  );
  throw error;
}

/**
 * Runs before a message is stored: sets and records `envelope.hops` (when above 0), or refuses the send with
 * CONFLICT (`details.guard` LOOP_DETECTED or SESSION_PAUSED) when a guard trips. A session whose
 * budget or pair window is exceeded is paused (its status too) until `sessions resume`.
 */
export async function guardMessage(ctx: Context & { agent: AuthedAgent }, envelope: Envelope): Promise<void> {
  const { hub, agent } = ctx;
  const limit = limits(ctx);
  const { parent_message_id: parent, caused_by: causedBy, session_id: sessionId } = envelope.payload.context;
  const links = [parent, causedBy].filter((id): id is string => typeof id === 'string');
  if (links.length > 0) {
    const hops = Math.max(...(await Promise.all(links.map((id) => hub.memory.guards.hopsOf(id))))) + 1;
    if (hops > limit.maxHops) {
      refuse(
        ctx,
        agent,
        envelope,
        'max_hops',
        new LinkerError(
          'CONFLICT',
          `LOOP_DETECTED: this message would be hop ${hops} of a chain of messages (parent_message_id / caused_by links); the hub allows ${limit.maxHops}`,
          {
            guard: LOOP_DETECTED,
            hops,
            max_hops: limit.maxHops,
          },
        ),
      );
    }
    envelope.hops = hops;
  }
  if (sessionId) {
    const human = isAdmin(agent);
    const facts = {
      from: agent.id,
      to: envelope.to_agent,
      human,
      tokens: reportedTokens(envelope.payload.content),
      contextVersion: await contextVersion(ctx, sessionId),
      now: Date.now(),
    };
    const { trip, newlyTripped } = await hub.memory.guards.countMessage(sessionId, facts, limit);
    if (trip) {
      if (newlyTripped) await pauseSession(ctx, sessionId, trip);
      refuse(
        ctx,
        agent,
        envelope,
        trip.guard,
        new LinkerError(
          'CONFLICT',
          `${SESSION_PAUSED}: session ${sessionId} is paused by a loop guard (${trip.reason}); a human resumes it with \`skynet-linker sessions resume ${sessionId}\``,
          {
            guard: SESSION_PAUSED,
            session_id: sessionId,
            tripped: trip.guard,
            reason: trip.reason,
          },
        ),
      );
    }
  }
  // Before the message is stored, so an answer that comes at once already finds it.
  if (envelope.hops) await hub.memory.guards.recordHops(envelope.id, envelope.hops, limit.hopsTtlMs);
}

async function pauseSession(ctx: Context, sessionId: string, trip: GuardTrip): Promise<void> {
  const { hub } = ctx;
  // The session may not exist yet (created on first message): the guard's own pause still holds.
  if (await hub.memory.sessions.get(sessionId, { messageLimit: 0 })) {
    await hub.memory.sessions.update(sessionId, { status: 'paused', metadata: { paused_by: trip.guard, paused_reason: trip.reason, paused_at: trip.at } });
  }
  hub.logger.warn({ event: 'session_paused', session_id: sessionId, guard: trip.guard, reason: trip.reason }, `session ${sessionId} paused by a loop guard`);
}

const SessionRef = z.strictObject({ session_id: SessionIdSchema });

export const guardsRouter = router({
  /** A session's guard counters and pause, with the limits in force. */
  show: agentProcedure.input(SessionRef).query(async ({ ctx, input }) => {
    const session = await ctx.hub.memory.sessions.get(input.session_id, { messageLimit: 0 });
    if (session && !isAdmin(ctx.agent) && !session.participants.includes(ctx.agent.id)) {
      throw new LinkerError('FORBIDDEN', `${ctx.agent.id} is not a participant of session ${input.session_id}`);
    }
    const state = await ctx.hub.memory.guards.sessionState(input.session_id);
    return { session_id: input.session_id, limits: limits(ctx), state };
  }),

  /** Reopens a session paused by a guard and clears its counters (admin: a human decides). */
  resume: adminProcedure.input(SessionRef).mutation(async ({ ctx, input }) => {
    const { hub } = ctx;
    const state = await hub.memory.guards.sessionState(input.session_id);
    const session = await hub.memory.sessions.get(input.session_id, { messageLimit: 0 });
    if (!session && !state) throw new LinkerError('NOT_FOUND', `no session named ${input.session_id}`);
    await hub.memory.guards.reset(input.session_id, await contextVersion(ctx, input.session_id));
    const status =
      session && session.status === 'paused'
        ? (await hub.memory.sessions.update(input.session_id, { status: 'active' })).status
        : (session?.status ?? 'active');
    hub.logger.info(
      { event: 'session_resumed', session_id: input.session_id, by: ctx.agent.id, was: state?.paused?.guard ?? null },
      `session ${input.session_id} resumed`,
    );
    return { session_id: input.session_id, status, was_paused: state?.paused ?? null };
  }),
});
