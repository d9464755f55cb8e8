/**
 * Resolves who is calling, once per WebSocket connection or HTTP request. Bad credentials never
 * throw (a throw here makes tRPC clients reconnect forever, trpc #4774): they become `agent: null`
 * plus a reason, and the procedure middleware answers UNAUTHORIZED with it. Only a store outage
 * throws (SERVICE_UNAVAILABLE), where reconnecting later is exactly what the client should do.
 */
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { AgentIdSchema } from '../protocol/ids.js';
import { AgentTypeSchema } from '../protocol/records.js';
import { TRPCError } from '@trpc/server';
import { LinkerError } from '../protocol/errors.js';
import { hashToken } from '../memory/tokens.js';
import type { AuthedAgent, Context, HubServices, SocketLike } from '../router/context.js';

function bearer(req: IncomingMessage | undefined): string | null {
  const header = req?.headers?.authorization;
  if (!header) return null;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1]!.trim() : null;
}

function param(params: Record<string, unknown> | null | undefined, name: string): string | null {
  const v = params?.[name];
  return typeof v === 'string' && v.length > 0 ? v : null;
}

export async function resolveContext(
  hub: HubServices,
  opts: { req?: IncomingMessage; socket?: SocketLike | null; connectionParams?: Record<string, unknown> | null },
): Promise<Context> {
  const connectionId = randomUUID();
  const params = opts.connectionParams ?? null;
  const announcedType = param(params, 'agent_type');
  const base = {
    hub,
    connectionId,
    socket: opts.socket ?? null,
    announcedType: announcedType && AgentTypeSchema.safeParse(announcedType).success ? announcedType : null,
  };
  let agent: AuthedAgent | null = null;
  let authProblem: string | null = null;
  let credential: Context['credential'] = null;
  try {
    if (hub.settings.insecureNoAuth) {
      const id = param(params, 'agent_id') ?? (opts.req?.headers?.['x-agent-id'] as string | undefined) ?? null;
      const parsed = AgentIdSchema.safeParse(id);
      if (!parsed.success) authProblem = 'insecure mode: say who you are with connectionParams { agent_id } (or the X-Agent-Id header)';
      else {
        agent = { id: parsed.data, scopes: ['agent', 'monitor', 'admin'] };
        const existing = await hub.memory.agents.get(agent.id);
        if (!existing || (base.announcedType && existing.agent_type !== base.announcedType)) {
          await hub.memory.agents.upsert({ agent_id: agent.id, agent_type: base.announcedType ?? undefined });
          await hub.memory.channels.join(hub.settings.defaultChannel, agent.id);
        }
      }
    } else {
      const ticket = opts.socket ? null : param(params, 'ticket');
      // Over HTTP, connectionParams travel in the URL (SSE): a long-lived token there would end up
      // in logs and browser consoles. Browsers pass a short-lived ticket instead (auth.ticket).
      const urlToken = opts.socket ? null : param(params, 'token');
      const token = opts.socket ? param(params, 'token') : bearer(opts.req);
      if (urlToken && !token && !ticket) {
        authProblem =
          'a token in a URL is refused: send it as Authorization: Bearer <token>, or pass a single-use ticket from auth.ticket in connectionParams { ticket }';
      } else if (ticket && !token) {
        const redeemed = await hub.memory.tokens.redeemTicket(ticket);
        const record = redeemed ? await hub.memory.tokens.verifyHash(redeemed.tokenHash) : null;
        if (!redeemed || !record || record.agent_id !== redeemed.agentId)
          authProblem = 'invalid ticket: tickets are single-use and valid for seconds; get a new one (auth.ticket)';
        else {
          agent = { id: record.agent_id, scopes: record.scopes };
          credential = { tokenHash: redeemed.tokenHash, verifiedAt: Date.now() };
        }
      } else if (token) {
        const tokenHash = token.length <= 512 ? hashToken(token) : '';
        const record = await hub.memory.tokens.verifyHash(tokenHash);
        if (!record) authProblem = 'invalid token: this hub does not know it (revoked, mistyped, or issued by another hub)';
        else {
          agent = { id: record.agent_id, scopes: record.scopes };
          // A WebSocket or an SSE stream lives on: its token is checked again later (revocation).
          credential = { tokenHash, verifiedAt: Date.now() };
          if (base.announcedType) {
            const existing = await hub.memory.agents.get(agent.id);
            if (existing && existing.agent_type !== base.announcedType) await hub.memory.agents.upsert({ agent_id: agent.id, agent_type: base.announcedType });
          }
        }
      }
    }
  } catch (err) {
    hub.logger.error({ event: 'auth_failed', err }, 'credential check failed');
    if (err instanceof LinkerError && err.code === 'SERVICE_UNAVAILABLE') {
      // The one case where throwing here is right: a connection left unauthenticated for its whole
      // life would answer UNAUTHORIZED (fatal to agents); refused, the client connects again later
      // and is checked again once the store is back.
      throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'the hub cannot check credentials right now: its store is unreachable; retry shortly' });
    }
    agent = null;
    authProblem = 'the hub could not check credentials';
  }
  return { ...base, agent, authProblem, credential };
}
