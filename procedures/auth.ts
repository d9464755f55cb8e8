/**
 * auth.ticket: a short-lived, single-use ticket for a browser's SSE subscription URL, so no
 * long-lived token ever sits in a URL (proxies and browser consoles log URLs). Valid
 * TICKET_TTL_MS, bound to the identity of the token that asked for it: revoking the token also
 * ends the stream opened with the ticket.
 */
import { TRPCError } from '@trpc/server';
import { router, scopedProcedure } from '../router/trpc.js';

export const TICKET_TTL_MS = 30_000;

export const authRouter = router({
  ticket: scopedProcedure('agent', 'monitor', 'admin').mutation(async ({ ctx }) => {
    const tokenHash = ctx.credential?.tokenHash;
    if (!tokenHash)
      throw new TRPCError({
        code: 'PRECONDITION_FAILED',
        message: 'tickets stand for a token: this connection did not authenticate with one (insecure mode needs none)',
      });
    const ticket = await ctx.hub.memory.tokens.issueTicket(tokenHash, ctx.agent.id, TICKET_TTL_MS);
    return { ticket, expires_in_s: TICKET_TTL_MS / 1000 };
  }),
});
