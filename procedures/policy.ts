/**
 * Authorization in one place: who may read or change which resource. Procedures ask these
 * functions; nothing else decides. `AUTHORIZATION` is the same model as data: docs/security.md's
 * authorization table is checked against it (test/hub/policy-table.test.ts).
 *
 * Scopes: `agent` acts as its own id only; `monitor` reads the monitor stream and the agent list;
 * `admin` may do everything (an operator). Membership (session participants, channel members) is
 * read from the shared memory at the time of the call.
 */
import { LinkerError } from '../protocol/errors.js';
import type { Session } from '../protocol/records.js';
import type { AuthedAgent, Context } from '../router/context.js';

export function isAdmin(agent: AuthedAgent): boolean {
  return agent.scopes.includes('admin');
}

function forbidden(message: string): LinkerError {
  return new LinkerError('FORBIDDEN', message);
}

export interface AuthorizationRule {
  resource: string;
  read: string;
  write: string;
  members: string;
}

/** The authorization model, as docs/security.md shows it (one row per resource). */
export const AUTHORIZATION: readonly AuthorizationRule[] = [
  { resource: 'inbox (`messages.inbox`, `messages.ack`)', read: 'its agent', write: 'any agent sends to it (direct), members of its channels', members: '—' },
  { resource: 'history (`messages.history`)', read: 'its agent; admin', write: '—', members: '—' },
  {
    resource: 'reply (`type: reply` with `parent_message_id`)',
    read: '—',
    write: 'an agent the parent message was delivered to (its recipient, or a member of its channel), within the reply window; admin',
    members: '—',
  },
  {
    resource: 'session (`sessions.*`, `session_id` on a message)',
    read: 'participants; admin',
    write: 'participants; admin (a message naming an unknown session creates it with sender and recipient)',
    members: 'participants add participants (by messaging them or `sessions.update`); admin',
  },
  {
    resource: 'session context (`session:<id>`)',
    read: 'participants; admin',
    write: 'participants; admin (a first push to an unknown session starts it, the writer its participant)',
    members: "the session's",
  },
  { resource: 'agent context (`agent:<id>`)', read: 'that agent; admin', write: 'that agent; admin', members: '—' },
  { resource: 'global context (`global`)', read: 'any agent', write: 'any agent', members: '—' },
  { resource: 'context reset (`context.reset`)', read: '—', write: 'admin', members: '—' },
  {
    resource: 'open channel (`skynet_core` and channels joined into existence)',
    read: 'members (`channels.subscribe`); admin',
    write: 'any agent sends to it',
    members: 'anyone joins; a member leaves',
  },
  {
    resource: 'invite channel (`channels.create` with `policy: invite`)',
    read: 'members; admin',
    write: 'members; admin',
    members: 'members and admins invite (`channels.invite`)',
  },
  { resource: 'monitor (`monitor.stream`)', read: 'monitor or admin scope', write: '—', members: '—' },
  {
    resource: 'agents (`agents.list`, `agents.get`, `whoami`)',
    read: 'any token',
    write: 'an agent updates its own record; admin adds and removes agents',
    members: '—',
  },
  { resource: 'snapshots, keys, tokens (`admin.*`, `agents.tokens`)', read: 'admin', write: 'admin', members: '—' },
];

/** Only participants (and admins) see or change a session. */
export function assertParticipant(agent: AuthedAgent, session: Pick<Session, 'session_id' | 'participants'>): void {
  if (!isAdmin(agent) && !session.participants.includes(agent.id)) {
    throw forbidden(`${agent.id} is not a participant of session ${session.session_id}`);
  }
}

/**
 * Context scopes: `global` is everyone's; `agent:<id>` belongs to that agent; `session:<id>` to
 * the session's participants (the session must exist). Admins may use every scope.
 */
export async function assertScopeAccess(ctx: Context & { agent: AuthedAgent }, scope: string, action: 'read' | 'write'): Promise<void> {
  const { agent } = ctx;
  if (scope === 'global' || isAdmin(agent)) return;
  const verb = action === 'read' ? 'reading' : 'writing';
  if (scope.startsWith('agent:')) {
    const owner = scope.slice('agent:'.length);
    if (owner !== agent.id) throw forbidden(`${verb} the context of ${owner} needs the admin scope`);
    return;
  }
  if (scope.startsWith('session:')) {
    const sessionId = scope.slice('session:'.length);
    let session = await ctx.hub.memory.sessions.get(sessionId, { messageLimit: 0 });
    if (!session && action === 'write') {
      // Named for the first time (as a first message does): the writer starts it.
      session = await ctx.hub.memory.sessions
        .create({ session_id: sessionId, participants: [], metadata: {}, created_by: agent.id })
        .catch(async (err: unknown) => {
          if (err instanceof LinkerError && err.code === 'CONFLICT') return ctx.hub.memory.sessions.get(sessionId, { messageLimit: 0 });
          throw err;
        });
    }
    if (!session)
      throw new LinkerError(
        'NOT_FOUND',
        `no session named ${sessionId}: its context exists once the session does (sessions.create, a message naming it, or a first push)`,
      );
    if (!session.participants.includes(agent.id))
      throw forbidden(`${verb} the context of session ${sessionId} is for its participants; ${agent.id} is not one`);
    return;
  }
  throw forbidden(`unknown context scope ${scope}`);
}

/**
 * A reply answers a message that was delivered to the replier: its direct recipient, or a member
 * of the channel it went to. So nobody else can answer a request in someone's name.
 */
export async function assertMayReply(ctx: Context & { agent: AuthedAgent }, parentId: string): Promise<void> {
  const { agent } = ctx;
  if (isAdmin(agent)) return;
  const route = await ctx.hub.memory.messages.routeOf(parentId, ctx.hub.settings.replyWindowMs);
  const window = `${Math.round(ctx.hub.settings.replyWindowMs / 3_600_000)} h`;
  if (!route)
    throw forbidden(
      `a reply must answer a message delivered to ${agent.id}: no message ${parentId} is known (unknown id, or older than the reply window of ${window})`,
    );
  if (route.to !== null) {
    if (route.to === agent.id) return;
  } else if (route.channel !== null && route.from !== agent.id && (await ctx.hub.memory.channels.isMember(route.channel, agent.id))) {
    return;
  }
  throw forbidden(`a reply must answer a message delivered to ${agent.id}; message ${parentId} was not`);
}

/** Reading a channel's stream is for its members (and admins). */
export async function assertChannelReader(ctx: Context & { agent: AuthedAgent }, channel: string): Promise<void> {
  if (isAdmin(ctx.agent)) return;
  if (!(await ctx.hub.memory.channels.isMember(channel, ctx.agent.id))) {
    throw forbidden(
      `${ctx.agent.id} is not a member of channel ${channel}: join it first (channels.join)${(await ctx.hub.memory.channels.policy(channel)) === 'invite' ? '; it is invite-only: a member or an admin adds members' : ''}`,
    );
  }
}

/** Joining an invite-only channel takes an invitation (channels.invite) by a member or an admin. */
export async function assertMayJoin(ctx: Context & { agent: AuthedAgent }, channel: string): Promise<void> {
  if (isAdmin(ctx.agent)) return;
  if ((await ctx.hub.memory.channels.policy(channel)) === 'invite' && !(await ctx.hub.memory.channels.isMember(channel, ctx.agent.id))) {
    throw forbidden(`channel ${channel} is invite-only: a member or an admin adds members (channels.invite)`);
  }
}

/** Members (and admins) invite agents into a channel. */
export async function assertMayInvite(ctx: Context & { agent: AuthedAgent }, channel: string): Promise<void> {
  if (isAdmin(ctx.agent)) return;
  if (!(await ctx.hub.memory.channels.isMember(channel, ctx.agent.id))) throw forbidden(`only members of channel ${channel} (or an admin) add members to it`);
}

/**
 * Sending to a channel: anyone may post to an open channel; an invite-only channel takes posts
 * from its members (and admins) only. `members` is the channel's member list, read by the caller.
 */
export async function assertMaySendToChannel(ctx: Context & { agent: AuthedAgent }, channel: string, members: readonly string[]): Promise<void> {
  if (isAdmin(ctx.agent) || members.includes(ctx.agent.id)) return;
  if ((await ctx.hub.memory.channels.policy(channel)) === 'invite') throw forbidden(`channel ${channel} is invite-only: only its members post to it`);
}
