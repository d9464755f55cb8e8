/** messages.*: send (direct, channel, broadcast), the resumable inbox, acks and history. */
import { TRPCError, tracked } from '@trpc/server';
import { z } from 'zod';
import { completeEnvelope, createEnvelopeSchemas, routeOf } from '../protocol/envelope.js';
import { AgentIdSchema, MessageIdSchema } from '../protocol/ids.js';
import { jsonFitsIn } from '../protocol/json.js';
import { LinkerError } from '../protocol/errors.js';
import { streamIdBefore } from '../memory/store.js';
import { agentProcedure, isAdmin, router } from '../router/trpc.js';
import type { Context, AuthedAgent } from '../router/context.js';
import { keys } from '../memory/keys.js';
import { unknownAgentError } from '../memory/agents.js';
import { guardMessage } from './guards.js';
import { liveStream, type LivePage, type StreamGap } from './live.js';
import { assertMayReply, assertMaySendToChannel } from './policy.js';
import { byPriority, liveLimits, notExpired, readEntries, ResumeInput, safeDecode, StreamIdSchema, trackedMessage } from './shared.js';

// The content is checked by ContentGuard below (iteratively, and its size in sendMessage against
// the hub's setting): the schema checks the envelope's shape around it.
const { OutgoingMessage } = createEnvelopeSchemas({ maxPayloadBytes: Number.MAX_SAFE_INTEGER, contentCheckedByCaller: true });

/** Deepest nesting accepted in `payload.content` (the content itself is level 1). */
export const MAX_CONTENT_DEPTH = 32;

const NOT_JSON = 'payload content must be JSON: strings, finite numbers, booleans, null, arrays and plain objects';

/**
 * Runs before the envelope schema and is the whole check of `payload.content`: one walk without
 * recursion (every input is already capped at MAX_INPUT_DEPTH by the router, before zod ever
 * sees it), instead of zod's recursive z.json(), whose cycle memo allocated a fifth of the hub's
 * memory per message (measured). It refuses:
 * - a missing content, and any value JSON cannot carry (undefined, NaN, Infinity, bigint, Date,
 *   Map, class instances, array holes: what a superjson input could bring);
 * - content nested deeper than MAX_CONTENT_DEPTH (BAD_REQUEST), leaving room for the envelope
 *   around it within the router's cap and keeping deliveries on the plain-JSON path;
 * - an own `__proto__` key (zod would silently turn it into the object's prototype);
 * and turns `-0` into 0, as JSON has it.
 */
const ContentGuard = z.custom<z.input<typeof OutgoingMessage>>().superRefine((input, ctx) => {
  const payload = (input as { payload?: unknown } | null)?.payload;
  // A payload that is not an object is the envelope schema's to report.
  if (payload === null || typeof payload !== 'object') return;
  const holder = payload as { content?: unknown };
  const fail = (message: string) => ctx.addIssue({ code: 'custom', path: ['payload', 'content'], message });
  if (!('content' in holder)) return fail('payload content is required');
  if (holder.content === 0 && Object.is(holder.content, -0)) holder.content = 0;
  const content = holder.content;
  if (content === null || typeof content !== 'object') {
    if (!isJsonLeaf(content)) fail(NOT_JSON);
    return;
  }
  const stack: { value: object; depth: number }[] = [{ value: content, depth: 1 }];
  /** One child of a container: -0 becomes 0, a container is walked later; false for a non-JSON leaf. */
  const child = (container: Record<string | number, unknown>, key: string | number, depth: number): boolean => {
    const v = container[key];
    if (v === 0 && Object.is(v, -0)) container[key] = 0;
    else if (v !== null && typeof v === 'object') stack.push({ value: v, depth: depth + 1 });
    else return isJsonLeaf(v);
    return true;
  };
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (depth > MAX_CONTENT_DEPTH) return fail(`payload content is nested more than ${MAX_CONTENT_DEPTH} levels deep`);
    const container = value as Record<string | number, unknown>;
    if (Array.isArray(value)) {
      // By index: holes are visited (as undefined) and refused.
      for (let i = 0; i < value.length; i++) if (!child(container, i, depth)) return fail(NOT_JSON);
      continue;
    }
    if (Object.getPrototypeOf(value) !== Object.prototype) return fail(NOT_JSON);
    for (const key of Object.keys(value)) {
      if (key === '__proto__') return fail('payload content may not use the key "__proto__"');
      if (!child(container, key, depth)) return fail(NOT_JSON);
    }
  }
});

/** A JSON value that is not an array or object: null, a string, a boolean or a finite number. */
function isJsonLeaf(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}
const GuardedOutgoingMessage = ContentGuard.pipe(OutgoingMessage);

export interface SendResult {
  id: string;
  trace_id: string;
  timestamp: string;
  route: 'direct' | 'channel';
  channel: string | null;
  delivered_to: string[];
  stream_ids: Record<string, string>;
}

/** Validates, stamps, stores durably, then fans out live. Resolves once every inbox has it. */
export async function sendMessage(ctx: Context & { agent: AuthedAgent }, input: z.output<typeof OutgoingMessage>): Promise<SendResult> {
  const { hub, agent } = ctx;
  if (input.from_agent && input.from_agent !== agent.id) {
    throw new TRPCError({ code: 'FORBIDDEN', message: `from_agent is ${input.from_agent} but this connection is authenticated as ${agent.id}` });
  }
  if (!hub.rateLimiter.take(agent.id)) {
    throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: `rate limit: ${agent.id} may send ${hub.rateLimiter.perSecond} messages per second` });
  }
  const envelope = completeEnvelope(input, { fromAgent: agent.id, defaultChannel: hub.settings.defaultChannel });
  await guardMessage(ctx, envelope);
  // The envelope's JSON, serialized once: stored (sealed) and sent to every recipient as is. The
  // content's JSON is part of it, so a short envelope needs no count of the content alone.
  const text = JSON.stringify(envelope);
  const limit = hub.settings.maxPayloadBytes;
  if (text.length * 3 > limit) {
    const { fits, size } = jsonFitsIn(input.payload.content, limit);
    if (!fits) throw new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `payload content is ${size} bytes, over the limit of ${limit} bytes` });
  }
  const route = routeOf(envelope);
  const sessionId = envelope.payload.context.session_id;
  const parentId = envelope.payload.context.parent_message_id;
  // Only whom a message was delivered to may answer it (procedures/policy.ts).
  if (envelope.type === 'reply' && parentId) await assertMayReply(ctx, parentId);
  let recipients: string[];
  if (route.kind === 'direct') {
    // The recipient's registration is checked in the same step as the append (route() below);
    // a session message checks it first as well, so the session records no message that fails.
    if (sessionId && !(await hub.memory.agents.exists(route.to))) throw unknownAgentError(route.to);
    recipients = [route.to];
  } else {
    const members = await hub.memory.channels.members(route.channel);
    await assertMaySendToChannel(ctx, route.channel, members);
    recipients = members.filter((a) => a !== agent.id);
  }
  if (sessionId) {
    // Only participants add to an existing session (FORBIDDEN otherwise); a new one is created.
    await hub.memory.sessions.addMessage(
      sessionId,
      { message_id: envelope.id, from: envelope.from_agent, to: envelope.to_agent, type: envelope.type, timestamp: envelope.timestamp },
      { admin: isAdmin(agent) },
    );
  }
  const stored = await hub.memory.messages.prepare(envelope, text);
  const channel = route.kind === 'channel' ? route.channel : null;
  // Where it went, for the reply check: written beside the append (both before `send` resolves
  // and before the live event that lets a recipient answer it).
  const [result] = await Promise.all([
    hub.memory.messages.route(stored, recipients, channel, route.kind === 'direct' ? route.to : undefined),
    hub.memory.messages.recordRoute(envelope.id, { from: agent.id, to: route.kind === 'direct' ? route.to : null, channel }, hub.settings.replyWindowMs),
  ]);
  hub.bus.publishRouted({
    node: hub.bus.nodeId,
    fields: result.fields,
    inboxes: result.inboxes,
    inboxPrev: result.inboxPrev,
    channel,
    channelStreamId: result.channelStreamId,
    channelPrev: result.channelPrev,
    from: envelope.from_agent,
    to: envelope.to_agent,
    type: envelope.type,
    sentAt: Date.now(),
  });
  hub.metrics.countMessage(envelope.type, route.kind);
  hub.logger.debug({
    event: 'message_routed',
    trace_id: envelope.trace_id,
    agent_id: agent.id,
    message_id: envelope.id,
    type: envelope.type,
    recipients: recipients.length,
  });
  return {
    id: envelope.id,
    trace_id: envelope.trace_id,
    timestamp: envelope.timestamp,
    route: route.kind,
    channel,
    delivered_to: recipients,
    stream_ids: result.inboxes,
  };
}

const AckInput = z.strictObject({
  acks: z
    .array(z.strictObject({ message_id: MessageIdSchema, stream_id: StreamIdSchema }))
    .max(1000)
    .default([]),
  /** Resume point of the inbox: a fresh subscription starts after it. */
  cursor: StreamIdSchema.optional(),
});

export const messagesRouter = router({
  send: agentProcedure.input(GuardedOutgoingMessage).mutation(({ ctx, input }) => sendMessage(ctx, input)),

  /**
   * The caller's inbox. Resumes after `lastEventId` (tRPC passes it on reconnect), else after the
   * last acked cursor; the replayed backlog comes highest priority first; expired messages are skipped.
   * When the capped inbox trimmed messages after that point (or, with no cursor at all, ever trimmed
   * any) before they were read, the first item after it carries `gap` (see StreamMessageItem).
   */
  inbox: agentProcedure.input(ResumeInput.optional()).subscription(async ({ ctx, input, signal }) => {
    // Set up before the subscription reports started: the agent is online and listening by then.
    const { hub, agent } = ctx;
    const owner = { agent: agent.id };
    const decode = (e: { id: string; fields: Record<string, string> }) => notExpired(hub.memory.messages.decode(e, owner));
    const cursor = input?.lastEventId ?? (await hub.memory.messages.cursor(agent.id)) ?? undefined;
    await hub.presence.add(agent.id, ctx.connectionId);
    const { deliveries, deliveryLatency } = hub.metrics;
    const live = deliveries.labels('live');
    const replay = deliveries.labels('replay');
    // Listening from here (liveStream listens when called), so nothing sent after `started` is
    // missed live. Stopped before its first read (stop sent while the lines above awaited the
    // store), the stream still ends the presence on abort, or the agent would stay "online" here.
    return liveStream({
      signal,
      cursor,
      listen: (push) => hub.bus.onInbox(agent.id, push),
      readAfter: readEntries(ctx, keys.history(agent.id), decode),
      decode: (streamId, fields) => safeDecode(ctx, { id: streamId, fields }, decode),
      orderBacklog: byPriority,
      streamInfo: () => hub.memory.messages.inboxInfo(agent.id),
      gapFromStart: true,
      streamCap: hub.memory.messages.limits.inboxMaxLen,
      ...liveLimits(ctx, 'messages.inbox'),
      project: (y) => {
        if (y.gap) hub.logger.warn({ event: 'inbox_gap', agent_id: agent.id, ...y.gap }, 'inbox messages were trimmed before delivery; told the subscriber');
        if (y.replayed) replay.inc();
        else {
          live.inc();
          deliveryLatency.observe(Math.max(0, Date.now() - Date.parse(y.item.envelope.timestamp)) / 1000);
        }
        return trackedMessage(y);
      },
      onEnd: () => hub.presence.remove(agent.id, ctx.connectionId).catch(() => {}),
    });
  }),

  /** Acknowledges messages (notifies senders of `requires_ack` ones) and/or moves the inbox cursor. */
  ack: agentProcedure.input(AckInput).mutation(async ({ ctx, input }) => {
    const { hub, agent } = ctx;
    const acked: string[] = [];
    for (const a of input.acks) {
      const [entry] = await hub.memory.store.readStream(keys.history(agent.id), { after: streamIdBefore(a.stream_id), count: 1 });
      if (!entry || entry.id !== a.stream_id) throw new LinkerError('NOT_FOUND', `no message ${a.message_id} at ${a.stream_id} in the inbox of ${agent.id}`);
      const { envelope } = hub.memory.messages.decode(entry, { agent: agent.id });
      if (envelope.id !== a.message_id) throw new LinkerError('BAD_REQUEST', `stream id ${a.stream_id} holds message ${envelope.id}, not ${a.message_id}`);
      if (!envelope.payload.meta.requires_ack) continue;
      const ack = { message_id: envelope.id, by: agent.id, at: new Date().toISOString() };
      const recorded = await hub.memory.messages.recordAck(envelope.from_agent, ack);
      hub.bus.publishAck({ node: hub.bus.nodeId, sender: envelope.from_agent, streamId: recorded.id, prev: recorded.prev, ack });
      acked.push(envelope.id);
    }
    const cursor = input.cursor ? await hub.memory.messages.advanceCursor(agent.id, input.cursor) : await hub.memory.messages.cursor(agent.id);
    return { acked, cursor };
  }),

  /**
   * Acks of messages the caller sent, live and resumable. Resumed from a `lastEventId` older than
   * what the capped ack stream keeps, the first ack after it carries `gap` (as the inbox does).
   */
  acks: agentProcedure.input(ResumeInput.optional()).subscription(({ ctx, input, signal }) => {
    const { hub, agent } = ctx;
    type AckItem = { streamId: string; ack: { message_id: string; by: string; at: string } };
    return liveStream({
      signal,
      cursor: input?.lastEventId ?? undefined,
      listen: (push) => hub.bus.onAck(agent.id, (e) => push(e.streamId, { mid: e.ack.message_id, by: e.ack.by, at: e.ack.at }, e.prev)),
      readAfter: async (after, count) => {
        const rows = await hub.memory.messages.readAcks(agent.id, after, count);
        const out: LivePage<AckItem> = rows;
        out.firstId = rows[0]?.streamId;
        out.lastId = rows.at(-1)?.streamId;
        return out;
      },
      decode: (streamId, f): AckItem => ({ streamId, ack: { message_id: f.mid ?? '', by: f.by ?? '', at: f.at ?? '' } }),
      streamInfo: () => hub.memory.store.streamInfo(keys.acks(agent.id)),
      streamCap: hub.memory.messages.limits.acksMaxLen,
      ...liveLimits(ctx, 'messages.acks'),
      project: (y) => {
        if (y.gap) hub.logger.warn({ event: 'acks_gap', agent_id: agent.id, ...y.gap }, 'acks were trimmed before delivery; told the subscriber');
        const item: AckItem['ack'] & { gap?: StreamGap } = y.gap ? { ...y.item.ack, gap: y.gap } : y.item.ack;
        return tracked(y.resumeId, item);
      },
    });
  }),

  /** An agent's capped history (its inbox), newest first, paged with `before`. */
  history: agentProcedure
    .input(
      z.strictObject({
        agent_id: AgentIdSchema.optional(),
        before: StreamIdSchema.optional(),
        limit: z.number().int().min(1).max(500).default(50),
      }),
    )
    .query(async ({ ctx, input }) => {
      const target = input.agent_id ?? ctx.agent.id;
      if (target !== ctx.agent.id && !isAdmin(ctx.agent)) {
        throw new TRPCError({ code: 'FORBIDDEN', message: `reading the history of ${target} needs the admin scope` });
      }
      const entries = await ctx.hub.memory.store.readStreamReverse(keys.history(target), { before: input.before, count: input.limit });
      const items = entries
        .map((e) => safeDecode(ctx, e, (x) => ctx.hub.memory.messages.decode(x, { agent: target })))
        .filter((m): m is NonNullable<typeof m> => m !== null)
        .map((m) => ({ stream_id: m.streamId, message: m.envelope }));
      const last = entries.at(-1)?.id;
      return { items, next_before: entries.length === input.limit && last ? last : null };
    }),
});
