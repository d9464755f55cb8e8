/** `skynet-linker sessions create|list|show|close`. */
import { Command, Option } from 'clipanion';
import { SESSION_STATUSES, type SessionStatus } from '../protocol/records.js';
import { CliError } from './errors.js';
import { LinkerCommand, parseFormat, formatOption } from './base.js';

export class SessionsCreateCommand extends LinkerCommand {
  static override paths = [['sessions', 'create']];
  static override usage = Command.Usage({
    description: 'Create a collaboration session',
    examples: [['The seed session', 'skynet-linker sessions create --id sess_123 --participants claude_cli,gemini --goal "Analyser et générer rapport"']],
  });
  agentId = Option.String('--agent-id', { description: 'Act as this agent' });
  id = Option.String('--id', { description: 'Session id (default: generated)' });
  participants = Option.String('--participants', { description: 'Comma-separated agent ids' });
  goal = Option.String('--goal', { description: 'What the session is for' });
  deadline = Option.String('--deadline', { description: 'ISO 8601 deadline' });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    const trpc = await this.clientAs(this.actingAgentId(this.agentId));
    const s = await trpc.sessions.create.mutate({
      session_id: this.id,
      participants: (this.participants ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
      metadata: { ...(this.goal ? { goal: this.goal } : {}), ...(this.deadline ? { deadline: this.deadline } : {}) },
    });
    if (format === 'json') this.printJson(s);
    else this.print(s.session_id);
  }
}

export class SessionsListCommand extends LinkerCommand {
  static override paths = [['sessions', 'list']];
  static override usage = Command.Usage({ description: 'List sessions', examples: [['Active ones', 'skynet-linker sessions list --status active']] });
  agentId = Option.String('--agent-id', { description: 'Act as this agent' });
  status = Option.String('--status', { description: SESSION_STATUSES.join(' | ') });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    if (this.status && !(SESSION_STATUSES as readonly string[]).includes(this.status))
      throw new CliError('USAGE', `--status must be one of ${SESSION_STATUSES.join(', ')}`);
    const trpc = await this.clientAs(this.actingAgentId(this.agentId));
    const list = await trpc.sessions.list.query({ status: this.status as SessionStatus | undefined });
    if (format === 'json') this.printJson(list);
    else if (list.length === 0) this.print('no sessions');
    else for (const s of list) this.print(`- ${s.session_id} [${s.status}] ${s.participants.join(', ')}`);
  }
}

export class SessionsShowCommand extends LinkerCommand {
  static override paths = [['sessions', 'show']];
  static override usage = Command.Usage({ description: 'Show a session with its messages', examples: [['Show', 'skynet-linker sessions show sess_123']] });
  agentId = Option.String('--agent-id', { description: 'Act as this agent' });
  sessionId = Option.String({ name: 'session-id' });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    const trpc = await this.clientAs(this.actingAgentId(this.agentId));
    const s = await trpc.sessions.get.query({ session_id: this.sessionId });
    if (format === 'json') return this.printJson(s);
    this.print(`${s.session_id} [${s.status}] created by ${s.created_by} at ${s.created_at}`);
    this.print(`participants: ${s.participants.join(', ')}`);
    if (s.metadata.goal) this.print(`goal: ${s.metadata.goal}`);
    if (s.metadata.deadline) this.print(`deadline: ${s.metadata.deadline}`);
    for (const m of s.messages) this.print(`  ${m.timestamp} ${m.from} → ${m.to ?? '*'}: ${m.type} (${m.message_id})`);
  }
}

export class SessionsCloseCommand extends LinkerCommand {
  static override paths = [['sessions', 'close']];
  static override usage = Command.Usage({ description: 'Mark a session completed', examples: [['Close', 'skynet-linker sessions close sess_123']] });
  agentId = Option.String('--agent-id', { description: 'Act as this agent' });
  sessionId = Option.String({ name: 'session-id' });

  async run() {
    const trpc = await this.clientAs(this.actingAgentId(this.agentId));
    const s = await trpc.sessions.close.mutate({ session_id: this.sessionId });
    this.print(`${s.session_id} is ${s.status}`);
  }
}

export class SessionsResumeCommand extends LinkerCommand {
  static override paths = [['sessions', 'resume']];
  static override usage = Command.Usage({
    description: 'Reopen a session a loop guard paused, clearing its counters (admin)',
    details: `
      A loop guard (docs/loop-guards.md) pauses a session whose agents sent too many messages or model tokens without a human in between, or where two agents kept exchanging messages without progress. Agents' sends in it are refused until an admin runs this.
    `,
    examples: [['Resume', 'skynet-linker sessions resume sess_123']],
  });
  agentId = Option.String('--agent-id', { description: 'Act as this agent (an admin)' });
  sessionId = Option.String({ name: 'session-id' });
  format = Option.String('--format', { description: 'text or json' });

  async run() {
    const format = parseFormat(this.format);
    const trpc = await this.clientAs(this.actingAgentId(this.agentId));
    const r = await trpc.guards.resume.mutate({ session_id: this.sessionId });
    if (format === 'json') return this.printJson(r);
    this.print(
      `${r.session_id} is ${r.status}${r.was_paused ? ` (had been paused: ${r.was_paused.reason})` : ' (it was not paused by a guard; counters cleared)'}`,
    );
  }
}
