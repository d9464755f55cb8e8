/** context.*: push (merge, compare-and-set), pull and watch the shared context of a scope. */
import { tracked } from '@trpc/server';
import { z } from 'zod';
import { ContextPushSchema, ContextScopeSchema, type ContextDocument } from '../protocol/records.js';
import { adminProcedure, agentProcedure, router } from '../router/trpc.js';
import { assertScopeAccess } from './policy.js';

export const contextRouter = router({
  push: agentProcedure.input(ContextPushSchema).mutation(async ({ ctx, input, signal }) => {
    await assertScopeAccess(ctx, input.scope, 'write');
    // Queued behind the node's other pushes to the scope; dropped if the connection closes first.
    const doc = await ctx.hub.memory.contexts.push(input.scope, input.patch, ctx.agent.id, { expectedVersion: input.expected_version, signal });
    ctx.hub.bus.publishContext({ node: ctx.hub.bus.nodeId, scope: input.scope, version: doc.version });
    return doc;
  }),

  pull: agentProcedure.input(z.strictObject({ scope: ContextScopeSchema })).query(async ({ ctx, input }) => {
    await assertScopeAccess(ctx, input.scope, 'read');
    return ctx.hub.memory.contexts.pull(input.scope);
  }),

  /** Replaces a scope with an empty document at the next version (e.g. one that fails its integrity check). Admin only. */
  reset: adminProcedure.input(z.strictObject({ scope: ContextScopeSchema })).mutation(async ({ ctx, input }) => {
    const doc = await ctx.hub.memory.contexts.reset(input.scope, ctx.agent.id);
    ctx.hub.logger.warn({ event: 'context_reset', scope: input.scope, by: ctx.agent.id }, 'context scope reset');
    ctx.hub.bus.publishContext({ node: ctx.hub.bus.nodeId, scope: input.scope, version: doc.version });
    return doc;
  }),

  /** The current document, then every new version (tracked by version number). */
  watch: agentProcedure.input(z.strictObject({ scope: ContextScopeSchema, lastEventId: z.string().nullish() })).subscription(async function* ({
    ctx,
    input,
    signal,
  }) {
    await assertScopeAccess(ctx, input.scope, 'read');
    const { hub } = ctx;
    let seen = input.lastEventId ? Number(input.lastEventId) : -1;
    let wake: (() => void) | null = null;
    let pending = true;
    const off = hub.bus.onContext(input.scope, () => {
      pending = true;
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      while (!signal?.aborted) {
        if (!pending) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        pending = false;
        const doc: ContextDocument = await hub.memory.contexts.pull(input.scope);
        if (doc.version > seen) {
          seen = doc.version;
          yield tracked(String(doc.version), doc);
        }
      }
    } finally {
      off();
      signal?.removeEventListener('abort', onAbort);
    }
  }),
});
