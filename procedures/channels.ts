/**
 * channels.*: membership (members get channel messages in their inbox), listing, and a resumable
 * channel stream. Each channel has a join policy (memory/channels.ts); who may do what is in
 * procedures/policy.ts.
 */
import { z } from 'zod';
import { AgentIdSchema, ChannelNameSchema } from '../protocol/ids.js';
import { LinkerError } from '../protocol/errors.js';
import { CHANNEL_POLICIES } from '../memory/channels.js';
import { agentProcedure, isAdmin, router } from '../router/trpc.js';
import { keys } from '../memory/keys.js';
import { liveStream } from './live.js';
import { assertChannelReader, assertMayInvite, assertMayJoin } from './policy.js';
import { liveLimits, notExpired, readEntries, safeDecode, StreamIdSchema, trackedMessage } from './shared.js';

const ChannelInput = z.strictObject({ channel: ChannelNameSchema });

export const channelsRouter = router({
  /** Open channels, and the invite-only ones the caller is a member of (admins see all). */
  list: agentProcedure.query(async ({ ctx }) => {
    const all = await ctx.hub.memory.channels.list();
    return isAdmin(ctx.agent) ? all : all.filter((c) => c.policy === 'open' || c.members.includes(ctx.agent.id));
  }),

  /** Creates a channel with a join policy (default open); the caller is its first member. CONFLICT when it exists. */
  create: agentProcedure.input(ChannelInput.extend({ policy: z.enum(CHANNEL_POLICIES).default('open') })).mutation(async ({ ctx, input }) => {
    await ctx.hub.memory.channels.create(input.channel, input.policy, ctx.agent.id);
    return { channel: input.channel, policy: input.policy, members: await ctx.hub.memory.channels.members(input.channel) };
  }),

  /** Joins a channel (an unknown one is created open). An invite-only channel needs an invitation. */
  join: agentProcedure.input(ChannelInput).mutation(async ({ ctx, input }) => {
    await assertMayJoin(ctx, input.channel);
    await ctx.hub.memory.channels.join(input.channel, ctx.agent.id);
    return { channel: input.channel, members: await ctx.hub.memory.channels.members(input.channel) };
  }),

  /** Adds another agent to a channel: members and admins may (the way into an invite-only channel). */
  invite: agentProcedure.input(ChannelInput.extend({ agent_id: AgentIdSchema })).mutation(async ({ ctx, input }) => {
    if (!(await ctx.hub.memory.channels.exists(input.channel))) throw new LinkerError('NOT_FOUND', `no channel named ${input.channel}`);
    await assertMayInvite(ctx, input.channel);
    if (!(await ctx.hub.memory.agents.exists(input.agent_id))) throw new LinkerError('NOT_FOUND', `unknown agent ${input.agent_id}`);
    await ctx.hub.memory.channels.join(input.channel, input.agent_id);
    return { channel: input.channel, members: await ctx.hub.memory.channels.members(input.channel) };
  }),

  leave: agentProcedure.input(ChannelInput).mutation(async ({ ctx, input }) => {
    await ctx.hub.memory.channels.leave(input.channel, ctx.agent.id);
    return { channel: input.channel, members: await ctx.hub.memory.channels.members(input.channel) };
  }),

  /**
   * Every message sent to a channel, live, resumable with lastEventId (channel stream ids), for
   * its members (and admins). Items are those of the inbox; `gap` says messages after lastEventId
   * were trimmed before they were read.
   */
  subscribe: agentProcedure.input(ChannelInput.extend({ lastEventId: StreamIdSchema.nullish() })).subscription(async ({ ctx, input, signal }) => {
    await assertChannelReader(ctx, input.channel);
    const { hub } = ctx;
    const owner = { channel: input.channel };
    const decode = (e: { id: string; fields: Record<string, string> }) => notExpired(hub.memory.messages.decode(e, owner));
    return liveStream({
      signal,
      cursor: input.lastEventId ?? undefined,
      listen: (push) => hub.bus.onChannel(input.channel, push),
      readAfter: readEntries(ctx, keys.channel(input.channel), decode),
      decode: (streamId, fields) => safeDecode(ctx, { id: streamId, fields }, decode),
      // A subscriber without lastEventId asks for what the channel keeps: no gap before that.
      streamInfo: () => hub.memory.messages.channelInfo(input.channel),
      streamCap: hub.memory.messages.limits.channelMaxLen,
      ...liveLimits(ctx, 'channels.subscribe'),
      project: (y) => {
        if (y.gap)
          hub.logger.warn(
            { event: 'channel_gap', agent_id: ctx.agent.id, channel: input.channel, ...y.gap },
            'channel messages were trimmed before delivery; told the subscriber',
          );
        return trackedMessage(y);
      },
    });
  }),
});
