/** agents.*: the cluster-wide registry with presence; admins add (issue a token) and remove agents. */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { AgentIdSchema } from '../protocol/ids.js';
import { AgentTypeSchema, PublicKeysSchema } from '../protocol/records.js';
import { SCOPES } from '../memory/tokens.js';
import { LinkerError } from '../protocol/errors.js';
import { utf8Length } from '../protocol/json.js';
import type { Context } from '../router/context.js';
import { adminProcedure, agentProcedure, router, scopedProcedure } from '../router/trpc.js';

const anyScope = scopedProcedure('agent', 'monitor', 'admin');

/** Agent metadata is bounded (settings.maxMetadataBytes, config limits.max_metadata_bytes). */
function assertMetadataSize(ctx: Context, metadata: unknown): void {
  if (metadata === undefined) return;
  const bytes = utf8Length(JSON.stringify(metadata));
  const limit = ctx.hub.settings.maxMetadataBytes;
  if (bytes > limit)
    throw new LinkerError('PAYLOAD_TOO_LARGE', `agent metadata is ${bytes} bytes, over the limit of ${limit} bytes (limits.max_metadata_bytes)`);
}

export const agentsRouter = router({
  /** Every registered agent with online/offline, connected since, last seen, metadata. */
  list: anyScope.query(({ ctx }) => ctx.hub.memory.agents.list()),

  get: anyScope.input(z.strictObject({ agent_id: AgentIdSchema })).query(async ({ ctx, input }) => {
    const record = await ctx.hub.memory.agents.get(input.agent_id);
    if (!record) throw new TRPCError({ code: 'NOT_FOUND', message: `unknown agent ${input.agent_id}` });
    return ctx.hub.memory.agents.status(record, {});
  }),

  /** Who am I: the identity and scopes of this connection's token. */
  whoami: anyScope.query(({ ctx }) => ({ agent_id: ctx.agent.id, scopes: [...ctx.agent.scopes] })),

  /** Updates the caller's own type, metadata or public keys (for end-to-end box and signatures). */
  update: agentProcedure
    .input(
      z.strictObject({
        agent_type: AgentTypeSchema.optional(),
        metadata: z.record(z.string(), z.json()).optional(),
        public_keys: PublicKeysSchema.optional(),
      }),
    )
    .mutation(({ ctx, input }) => {
      assertMetadataSize(ctx, input.metadata);
      return ctx.hub.memory.agents.upsert({ agent_id: ctx.agent.id, ...input });
    }),

  /** Registers an agent and issues a token for it (shown once). */
  add: adminProcedure
    .input(
      z.strictObject({
        agent_id: AgentIdSchema,
        /** Left out: an existing agent keeps its type; a new one gets `agent`. */
        agent_type: AgentTypeSchema.optional(),
        scopes: z.array(z.enum(SCOPES)).min(1).default(['agent']),
        metadata: z.record(z.string(), z.json()).optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      assertMetadataSize(ctx, input.metadata);
      const record = await ctx.hub.memory.agents.upsert({ agent_id: input.agent_id, agent_type: input.agent_type, metadata: input.metadata });
      await ctx.hub.memory.channels.join(ctx.hub.settings.defaultChannel, input.agent_id);
      const { token, record: tokenRecord } = await ctx.hub.memory.tokens.issue(input.agent_id, input.scopes);
      ctx.hub.logger.info({ event: 'token_issued', agent_id: input.agent_id, scopes: tokenRecord.scopes, by: ctx.agent.id }, 'token issued');
      return { agent: record, token, scopes: tokenRecord.scopes };
    }),

  /** Removes an agent: revokes its tokens, forgets it in the registry and its channels. */
  remove: adminProcedure.input(z.strictObject({ agent_id: AgentIdSchema })).mutation(async ({ ctx, input }) => {
    const revoked = await ctx.hub.memory.tokens.revokeAgent(input.agent_id);
    for (const ch of await ctx.hub.memory.channels.list()) {
      if (ch.members.includes(input.agent_id)) await ctx.hub.memory.channels.leave(ch.name, input.agent_id);
    }
    const existed = await ctx.hub.memory.agents.remove(input.agent_id);
    if (!existed && revoked === 0) throw new TRPCError({ code: 'NOT_FOUND', message: `unknown agent ${input.agent_id}` });
    // Its open streams on this node end now (other nodes: within their re-check interval).
    await ctx.hub.revocation?.checkNow();
    return { agent_id: input.agent_id, tokens_revoked: revoked };
  }),

  tokens: adminProcedure.query(({ ctx }) => ctx.hub.memory.tokens.list()),
});
