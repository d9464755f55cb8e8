/** context.*: push (merge, compare-and-set), pull and watch the shared context of a scope. */
import { TRPCError, tracked } from '@trpc/server';
import { z } from 'zod';
import { ContextPushSchema, ContextScopeSchema, type ContextDocument } from '../protocol/records.js';
import type { AuthedAgent } from '../router/context.js';
import { agentProcedure, isAdmin, router } from '../router/trpc.js';

/** `agent:<other>` scopes belong to that agent; everyone else needs admin. */
function assertMayUse(agent: AuthedAgent, scope: string, action: 'read' | 'write'): void {
  if (!scope.startsWith('agent:')) return;
  const owner = scope.slice('agent:'.length);
  if (owner !== agent.id && !isAdmin(agent)) {
    throw new TRPCError({ code: 'FORBIDDEN', message: `${action === 'read' ? 'reading' : 'writing'} the context of ${owner} needs the admin scope` });
  }
}

export const contextRouter = router({
  push: agentProcedure.input(ContextPushSchema).mutation(async ({ ctx, input }) => {
    assertMayUse(ctx.agent, input.scope, 'write');
    const doc = await ctx.hub.memory.contexts.push(input.scope, input.patch, ctx.agent.id, { expectedVersion: input.expected_version });
    ctx.hub.bus.publishContext({ node: ctx.hub.bus.nodeId, scope: input.scope, version: doc.version });
    return doc;
  }),

  pull: agentProcedure.input(z.strictObject({ scope: ContextScopeSchema })).query(async ({ ctx, input }) => {
    assertMayUse(ctx.agent, input.scope, 'read');
    return ctx.hub.memory.contexts.pull(input.scope);
  }),

  /** The current document, then every new version (tracked by version number). */
  watch: agentProcedure
    .input(z.strictObject({ scope: ContextScopeSchema, lastEventId: z.string().nullish() }))
    .subscription(async function* ({ ctx, input, signal }) {
      assertMayUse(ctx.agent, input.scope, 'read');
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
