/** sessions.*: collaboration sessions (participants, status, goal/deadline, message refs). */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { AgentIdSchema, MessageIdSchema, SessionIdSchema } from '../protocol/ids.js';
import { MessageTypeSchema } from '../protocol/envelope.js';
import { SessionMetadataSchema, SessionStatusSchema } from '../protocol/records.js';
import { agentProcedure, isAdmin, router } from '../router/trpc.js';
import { assertParticipant } from './policy.js';

const SessionRef = z.strictObject({ session_id: SessionIdSchema });

export const sessionsRouter = router({
  create: agentProcedure
    .input(
      z.strictObject({
        session_id: SessionIdSchema.optional(),
        participants: z.array(AgentIdSchema).max(1000).default([]),
        metadata: SessionMetadataSchema.default({}),
      }),
    )
    .mutation(({ ctx, input }) =>
      ctx.hub.memory.sessions.create({
        session_id: input.session_id ?? `sess_${globalThis.crypto.randomUUID()}`,
        participants: input.participants,
        metadata: input.metadata,
        created_by: ctx.agent.id,
      }),
    ),

  get: agentProcedure.input(SessionRef.extend({ message_limit: z.number().int().min(0).max(1000).default(100) })).query(async ({ ctx, input }) => {
    const session = await ctx.hub.memory.sessions.get(input.session_id, { messageLimit: input.message_limit });
    if (!session) throw new TRPCError({ code: 'NOT_FOUND', message: `no session named ${input.session_id}` });
    assertParticipant(ctx.agent, session);
    return session;
  }),

  list: agentProcedure.input(z.strictObject({ status: SessionStatusSchema.optional() }).optional()).query(async ({ ctx, input }) => {
    const all = await ctx.hub.memory.sessions.list({ status: input?.status });
    return isAdmin(ctx.agent) ? all : all.filter((s) => s.participants.includes(ctx.agent.id));
  }),

  addMessage: agentProcedure
    .input(
      SessionRef.extend({
        message_id: MessageIdSchema,
        to: AgentIdSchema.nullable().default(null),
        type: MessageTypeSchema.default('task'),
        timestamp: z.iso.datetime({ offset: true }).optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const session = await ctx.hub.memory.sessions.require(input.session_id);
      assertParticipant(ctx.agent, session);
      await ctx.hub.memory.sessions.addMessage(
        input.session_id,
        {
          message_id: input.message_id,
          from: ctx.agent.id,
          to: input.to,
          type: input.type,
          timestamp: input.timestamp ?? new Date().toISOString(),
        },
        { admin: isAdmin(ctx.agent) },
      );
      return ctx.hub.memory.sessions.require(input.session_id);
    }),

  update: agentProcedure
    .input(
      SessionRef.extend({
        status: SessionStatusSchema.optional(),
        metadata: SessionMetadataSchema.optional(),
        participants: z.array(AgentIdSchema).max(1000).optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      assertParticipant(ctx.agent, await ctx.hub.memory.sessions.require(input.session_id));
      return ctx.hub.memory.sessions.update(input.session_id, input);
    }),

  close: agentProcedure.input(SessionRef).mutation(async ({ ctx, input }) => {
    assertParticipant(ctx.agent, await ctx.hub.memory.sessions.require(input.session_id));
    return ctx.hub.memory.sessions.close(input.session_id);
  }),
});
