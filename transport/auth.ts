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
  const base = { hub, connectionId, socket: opts.socket ?? null, announcedType: announcedType && AgentTypeSchema.safeParse(announcedType).success ? announcedType : null };
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
      const token = param(params, 'token') ?? bearer(opts.req);
      if (token) {
        const record = await hub.memory.tokens.verify(token);
        if (!record) authProblem = 'invalid token: this hub does not know it (revoked, mistyped, or issued by another hub)';
        else {
          agent = { id: record.agent_id, scopes: record.scopes };
          // A WebSocket lives on: remember the token to check it again later (revocation).
          if (opts.socket) credential = { token, verifiedAt: Date.now() };
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
