/** channels.*: membership (members get channel messages in their inbox), listing, and a resumable channel stream. */
import { z } from 'zod';
import { ChannelNameSchema } from '../protocol/ids.js';
import { agentProcedure, router } from '../router/trpc.js';
import { keys } from '../memory/keys.js';
import { liveStream } from './live.js';
import { liveLimits, notExpired, readEntries, safeDecode, StreamIdSchema, trackedMessage } from './shared.js';

const ChannelInput = z.strictObject({ channel: ChannelNameSchema });

export const channelsRouter = router({
  list: agentProcedure.query(({ ctx }) => ctx.hub.memory.channels.list()),

  join: agentProcedure.input(ChannelInput).mutation(async ({ ctx, input }) => {
    await ctx.hub.memory.channels.join(input.channel, ctx.agent.id);
    return { channel: input.channel, members: await ctx.hub.memory.channels.members(input.channel) };
  }),

  leave: agentProcedure.input(ChannelInput).mutation(async ({ ctx, input }) => {
    await ctx.hub.memory.channels.leave(input.channel, ctx.agent.id);
    return { channel: input.channel, members: await ctx.hub.memory.channels.members(input.channel) };
  }),

  /**
   * Every message sent to a channel, live, resumable with lastEventId (channel stream ids). Items
   * are those of the inbox; `gap` says messages after lastEventId were trimmed before they were read.
   */
  subscribe: agentProcedure
    .input(ChannelInput.extend({ lastEventId: StreamIdSchema.nullish() }))
    .subscription(({ ctx, input, signal }) => {
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
          if (y.gap) hub.logger.warn({ event: 'channel_gap', agent_id: ctx.agent.id, channel: input.channel, ...y.gap }, 'channel messages were trimmed before delivery; told the subscriber');
          return trackedMessage(y);
        },
      });
    }),
});
